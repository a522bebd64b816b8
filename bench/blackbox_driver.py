#!/usr/bin/env python3
"""Drives blackbox_exporter the way Prometheus would: every INTERVAL seconds,
one /probe request per target, spread over the interval. Prints how many
probes completed and how many succeeded.

usage: blackbox_driver.py EXPORTER_URL PROBE_TARGET TARGETS INTERVAL SECONDS
"""
import sys
import threading
import time
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor

exporter, probe_target, targets, interval, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
done = ok = 0
lock = threading.Lock()


def probe(i):
    global done, ok
    query = urllib.parse.urlencode({"module": "http_post", "target": f"{probe_target}&t={i}"})
    try:
        with urllib.request.urlopen(f"{exporter}/probe?{query}", timeout=10) as r:
            success = b"probe_success 1" in r.read()
    except Exception:
        success = False
    with lock:
        done += 1
        ok += success


start = time.monotonic()
with ThreadPoolExecutor(max_workers=64) as pool:
    tick = 0
    while time.monotonic() - start < seconds:
        for i in range(targets):
            due = start + tick * interval + i * interval / targets
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            pool.submit(probe, i)
        tick += 1
print(f"blackbox probes: {done} done, {ok} succeeded")
