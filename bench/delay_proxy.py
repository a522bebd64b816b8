#!/usr/bin/env python3
"""A TCP proxy that delays every chunk by a fixed time in each direction.

Puts a database "far away" on loopback: 100 ms each way is a 200 ms round
trip, about Frankfurt to Singapore. Order is kept per direction; the delay
is added to each chunk as it arrives, so bandwidth is not limited, only
latency (what a long link does to a chatty protocol).

usage: delay_proxy.py LISTEN_PORT UPSTREAM_HOST:PORT ONE_WAY_MS
Prints "listening PORT" once ready (LISTEN_PORT 0 lets the system choose).
Stops on SIGTERM or when stdin closes (so a test that dies takes it along).
"""

import asyncio
import signal
import sys


async def pipe(reader, writer, delay):
    """Forwards reader to writer, each chunk `delay` seconds after it came."""
    loop = asyncio.get_running_loop()
    queue = asyncio.Queue()

    async def deliver():
        while True:
            due, data = await queue.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if data is None:
                break
            writer.write(data)
            await writer.drain()
        try:
            writer.write_eof()
        except (OSError, RuntimeError):
            pass

    sender = asyncio.create_task(deliver())
    try:
        while True:
            data = await reader.read(65536)
            queue.put_nowait((loop.time() + delay, data or None))
            if not data:
                break
        await sender
    except (ConnectionError, OSError):
        sender.cancel()
    finally:
        try:
            writer.close()
        except (OSError, RuntimeError):
            pass


async def main():
    listen_port = int(sys.argv[1])
    host, port = sys.argv[2].rsplit(":", 1)
    delay = float(sys.argv[3]) / 1000.0

    async def handle(client_reader, client_writer):
        try:
            up_reader, up_writer = await asyncio.open_connection(host, int(port))
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(
            pipe(client_reader, up_writer, delay),
            pipe(up_reader, client_writer, delay),
            return_exceptions=True,
        )

    server = await asyncio.start_server(handle, "127.0.0.1", listen_port)
    print("listening", server.sockets[0].getsockname()[1], flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    if not sys.stdin.isatty():
        loop.add_reader(sys.stdin.fileno(), lambda: stop.set() if not sys.stdin.buffer.read1(1) else None)
    async with server:
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main())
