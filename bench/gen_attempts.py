#!/usr/bin/env python3
"""Writes N attempts as JSON Lines: T targets, one prober, three operations
every 5 s, 2% failures, starting 2026-04-01T00:00:00Z.

usage: gen_attempts.py N TARGETS > attempts.jsonl
"""
import datetime as dt
import sys

n, targets = int(sys.argv[1]), int(sys.argv[2])
start = dt.datetime(2026, 4, 1, tzinfo=dt.timezone.utc)
kinds = ("login", "send_direct", "send_group")
out = sys.stdout
written = 0
tick = 0
while written < n:
    base = start + dt.timedelta(seconds=5 * tick)
    for t in range(targets):
        for k, kind in enumerate(kinds):
            if written == n:
                break
            at = (base + dt.timedelta(milliseconds=100 * k + t)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
            failed = (tick * 7 + t * 3 + k) % 50 == 0
            outcome = "fail" if failed else "ok"
            extra = ',"http_status":502,"error_code":"70500","error":"internal error"' if failed else ',"http_status":200'
            out.write(f'{{"target":"bench-{t}","prober":"bench-1","kind":"{kind}","started_at":"{at}",'
                      f'"latency_ms":{100 + (tick + k) % 90},"outcome":"{outcome}"{extra}}}\n')
            written += 1
    tick += 1
