#!/usr/bin/env python3
"""Writes config/sample-attempts.jsonl: five scripted hours of two probers.

Run from the repository root. The scenario (UTC, 1 April 2026, Service Month 1
of config/sample.toml):
  16:30-16:36  both probers fail everything (7 failure minutes, one incident)
  16:45        login ok, sends fail            -> available
  17:00-17:02  sgp-1 fails, fra-1 ok           -> available
  17:10-17:14  fra-1 silent, sgp-1 ok          -> available
  17:20-17:21  only inconclusive (bad signature)-> no data
  18:30-18:50  everything fails inside the announced maintenance -> excluded
  20:00-20:04  sgp-1 fails, fra-1 inconclusive (local network)  -> 5 failure minutes
"""
import datetime as dt
import json

START = dt.datetime(2026, 4, 1, 16, 0, tzinfo=dt.timezone.utc)
KINDS = ["login", "send_direct", "send_group"]


def outcome(prober, minute, kind):
    hm = (minute.hour, minute.minute)
    if (16, 30) <= hm <= (16, 36):
        return "fail", 502, "70500", "internal error"
    if hm == (16, 45):
        return ("ok", 200, None, None) if kind == "login" else ("fail", 200, "20004", "network error")
    if (17, 0) <= hm <= (17, 2) and prober == "sgp-1":
        return "fail", None, None, "timeout after 5s"
    if (17, 10) <= hm <= (17, 14) and prober == "fra-1":
        return None
    if (17, 20) <= hm <= (17, 21):
        return "inconclusive", 200, "70001", "usersig expired"
    if (18, 30) <= hm <= (18, 50):
        return "fail", 503, None, "service unavailable"
    if (20, 0) <= hm <= (20, 4):
        if prober == "fra-1":
            return "inconclusive", None, None, "control check failed: local network"
        return "fail", None, None, "connection reset"
    return "ok", 200, "0", None


with open("config/sample-attempts.jsonl", "w") as out:
    for m in range(5 * 60):
        minute = START + dt.timedelta(minutes=m)
        for p, prober in enumerate(["sgp-1", "fra-1"]):
            for k, kind in enumerate(KINDS):
                result = outcome(prober, minute, kind)
                if result is None:
                    continue
                verdict, status, code, error = result
                started = minute + dt.timedelta(seconds=5 + 15 * k + 2 * p)
                line = {"target": "tim-sgp", "prober": prober, "kind": kind,
                        "started_at": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
                        "latency_ms": 5000 if error and "timeout" in error else 120 + 7 * k,
                        "outcome": verdict}
                if status is not None:
                    line["http_status"] = status
                if code is not None:
                    line["error_code"] = code
                if error is not None:
                    line["error"] = error
                if verdict == "inconclusive":
                    line["reason"] = "local_network" if "network" in error else "credentials"
                out.write(json.dumps(line, separators=(",", ":")) + "\n")
