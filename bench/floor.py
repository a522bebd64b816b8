#!/usr/bin/env python3
"""The network floor of bench/probe.sh phase 1: the socket work of improbe's
100 simulator targets and nothing else, so the kernel's cost of that work
can be read on its own (docs/performance.md, "CPU").

At the same rate as improbe (TARGETS x 3 operations every second, spread
evenly), in the same order per target: a login on a fresh TCP connection
(connect, one POST, read the answer, close), then two POSTs on one
connection kept alive, as improbe's pooled sends are. Blocking sockets, the
fewest system calls a client can make for this: no TLS, no DNS, no options
but TCP_NODELAY. Python's own CPU is not the point; its system time is, and
is printed per operation.

usage: floor.py HOST PORT TARGETS SECONDS
"""
import os
import socket
import sys
import time

host, port, targets, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
query = "sdkappid=1400000000&identifier=administrator&usersig=x&random=1&contenttype=json"


def request(command, body):
    return (
        f"POST /v4/{command}?{query} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


login = request("im_open_login_svc/account_check", b'{"CheckItem":[{"UserID":"improbe_a"},{"UserID":"improbe_b"}]}')
sends = [
    request("openim/sendmsg", b'{"SyncOtherMachine":2,"From_Account":"improbe_a","To_Account":"improbe_b","MsgLifeTime":60,"MsgRandom":1,"MsgBody":[{"MsgType":"TIMTextElem","MsgContent":{"Text":"improbe floor"}}]}'),
    request("group_open_http_svc/send_group_msg", b'{"GroupId":"improbe","From_Account":"improbe_a","Random":1,"MsgBody":[{"MsgType":"TIMTextElem","MsgContent":{"Text":"improbe floor"}}]}'),
]


def connect():
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.connect((host, port))
    return sock


def exchange(sock, data):
    """Sends one request and reads its answer whole (Content-Length)."""
    sock.sendall(data)
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before the answer")
        buf += chunk
    head, _, body = buf.partition(b"\r\n\r\n")
    length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:"))
    while len(body) < length:
        body += sock.recv(65536)
    return head.startswith(b"HTTP/1.1 200")


kept = connect()
done = ok = 0
before = os.times()
start = time.monotonic()
operations = targets * 3
step = 1.0 / operations
n = 0
while True:
    due = start + n * step
    if due - start >= seconds:
        break
    delay = due - time.monotonic()
    if delay > 0:
        time.sleep(delay)
    if n % 3 == 0:
        fresh = connect()
        ok += exchange(fresh, login)
        fresh.close()
    else:
        ok += exchange(kept, sends[n % 3 - 1])
    done += 1
    n += 1
after = os.times()
system_us = (after.system - before.system) / done * 1e6
user_us = (after.user - before.user) / done * 1e6
print(f"floor: {done} operations ({ok} answered 200); system time {system_us:.1f} us per operation (Python's user time {user_us:.0f} us, not comparable)")
