#!/usr/bin/env python3
"""Writes one UTC day of attempts as JSON Lines for bench/storage.sh: T
targets probed by one prober at the default cadence (login, one-to-one and
group send every 5 s), 2 % failures with varied error texts, 0.5 %
inconclusive, latencies spread over two orders of magnitude (30 ms to 3 s,
log-uniform), sends with delivery confirmed. Deterministic for a day.

usage: gen_history.py DAY_INDEX TARGETS > day.jsonl   (day 0 = 2026-01-01)
"""
import datetime as dt
import math
import random
import sys

day, targets = int(sys.argv[1]), int(sys.argv[2])
rng = random.Random(day)
start = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(days=day)
kinds = ("login", "send_direct", "send_group")
errors = (
    (502, "70500", "internal error, request id {:08x}"),
    (None, None, "timed out after 10s waiting for {:08x}"),
    (503, None, "<html>Service Unavailable ({:08x})</html>"),
    (200, "90994", "server busy, retry later; trace {:08x}"),
)
out = sys.stdout
for tick in range(86400 // 5):
    base = start + dt.timedelta(seconds=5 * tick)
    for t in range(targets):
        for k, kind in enumerate(kinds):
            at = (base + dt.timedelta(milliseconds=100 * k + t)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
            latency = int(math.exp(rng.uniform(math.log(30), math.log(3000))))
            roll = rng.random()
            head = f'{{"target":"bench-{t}","prober":"bench-1","kind":"{kind}","started_at":"{at}","latency_ms":{latency}'
            if roll < 0.02:
                status, code, text = errors[rng.randrange(len(errors))]
                extra = (f',"http_status":{status}' if status else "") + (f',"error_code":"{code}"' if code else "")
                out.write(f'{head},"outcome":"fail"{extra},"error":"{text.format(rng.getrandbits(32))}"}}\n')
            elif roll < 0.025:
                out.write(f'{head},"outcome":"inconclusive","http_status":200,"error_code":"70001",'
                          f'"error":"UserSig expired","reason":"credentials"}}\n')
            elif kind == "login":
                out.write(f'{head},"outcome":"ok","http_status":200}}\n')
            else:
                delivered = latency + int(rng.uniform(20, 400))
                out.write(f'{head},"outcome":"ok","http_status":200,"delivery":"confirmed","delivered_ms":{delivered}}}\n')
