#!/usr/bin/env python3
"""Many regions, one database (docs/many-regions.md): N probers, each
probing the same T simulator targets (3 operations every 5 s each), all
writing one PostgreSQL reached through bench/delay_proxy.py, which adds a
fixed delay to every packet in each direction.

Reports, per run:
  - write lag: every 0.5 s the new rows of `attempts` are read; each
    attempt's lag is how long after it ended it was first seen stored
    (p50 / p99 / max over all attempts, resolution 0.5 s); and, as the
    issue measured it, how old each prober's newest stored attempt was
    when it last wrote (this includes the gaps between start slots);
  - write timeouts: "database write failed" lines in the probers' logs;
  - one /metrics scrape, p50 / p99 / max (a thread scraping the probers
    in turn, one after the other);
  - stored attempts against finished ones (each prober's own count at
    stop), and attempts left in a spool;
  - the CPU seconds the probers used;
  - what one connection costs through the delay (`improbe migrate` with
    nothing to do: connect and one query), with SSLMODE=... the probers'
    `sslmode` (default: the build's, `prefer`).

usage: regions.py BINARY PROBERS TARGETS ONE_WAY_MS SECONDS LABEL
"""

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

BINARY, PROBERS, TARGETS, ONE_WAY_MS, SECONDS, LABEL = sys.argv[1:7]
PROBERS, TARGETS, SECONDS = int(PROBERS), int(TARGETS), int(SECONDS)
HERE = os.path.dirname(os.path.abspath(__file__))
DB = "improbe_bench_regions"
ADMIN = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-qAt"]
SIM_PORT, PROXY_PORT, HTTP_BASE = 19580, 19581, 19600
# Lag and scrapes are measured from this many seconds after launch: every
# prober has connected, migrated (or found nothing to migrate) and replayed
# what it measured meanwhile. The startup is reported on its own.
WARMUP = 20


def psql(sql, db=DB):
    return subprocess.run(ADMIN + ["-d", db, "-c", sql], check=True, capture_output=True, text=True).stdout


def percentile(values, p):
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def main():
    psql(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)", "postgres")
    psql(f"CREATE DATABASE {DB}", "postgres")
    work = tempfile.mkdtemp(prefix="improbe-regions-")
    children = []
    try:
        sim = subprocess.Popen([BINARY, "simulate", "--listen", f"127.0.0.1:{SIM_PORT}"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        children.append(sim)
        proxy = subprocess.Popen([sys.executable, os.path.join(HERE, "delay_proxy.py"), str(PROXY_PORT),
                                  "127.0.0.1:5432", ONE_WAY_MS], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        children.append(proxy)
        proxy.stdout.readline()
        # SSLMODE=disable|require|...: the probers' sslmode (default: the
        # build's default, libpq's `prefer`: TLS where the server offers it).
        url = f"postgres://postgres@127.0.0.1:{PROXY_PORT}/{DB}"
        if os.environ.get("SSLMODE"):
            url += f"?sslmode={os.environ['SSLMODE']}"
        # Migrate once, directly, so the probers start together.
        first = os.path.join(work, "p0.toml")
        probers = []
        for p in range(PROBERS):
            path = os.path.join(work, f"p{p}.toml")
            data = os.path.join(work, f"data{p}")
            os.makedirs(data)
            with open(path, "w") as f:
                f.write(f'[prober]\nid = "region{p}"\ndata_dir = "{data}"\nlisten = "127.0.0.1:{HTTP_BASE + p}"\n'
                        f'[database]\nurl = "{url}"\n')
                for t in range(TARGETS):
                    f.write(f'[[targets]]\nname = "t{t}"\nprovider = "simulator"\ninterval = "5s"\ntimeout = "2s"\n'
                            f'[targets.simulator]\nendpoint = "http://127.0.0.1:{SIM_PORT}"\n'
                            f'[targets.sla]\nservice_start = "2026-01-01"\ntimezone = "UTC"\nmonthly_fee = "1"\n')
            probers.append(path)
        subprocess.run([BINARY, "--config", first, "migrate"], check=True, capture_output=True,
                       env={**os.environ, "IMPROBE_DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{DB}"})
        # What a (re)connection costs through the delay: `migrate` with
        # nothing to do is one connection and one query, run 5 times.
        connects = []
        for _ in range(5):
            t0 = time.monotonic()
            subprocess.run([BINARY, "--config", first, "migrate"], check=True, capture_output=True)
            connects.append(time.monotonic() - t0)
        logs, running = [], []
        for p, path in enumerate(probers):
            log = open(os.path.join(work, f"p{p}.log"), "w+")
            logs.append(log)
            running.append(subprocess.Popen([BINARY, "--config", path, "run"], stdout=log, stderr=log,
                                            env={**os.environ, "NO_COLOR": "1", "IMPROBE_LOG": os.environ.get("IMPROBE_LOG", "info")}))
        started = time.time()
        scrapes, stop_scraping = [], threading.Event()

        def scrape():
            n = 0
            while not stop_scraping.is_set():
                port = HTTP_BASE + n % PROBERS
                n += 1
                t0 = time.monotonic()
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=60) as r:
                        r.read()
                    if time.time() - started > WARMUP:
                        scrapes.append(time.monotonic() - t0)
                except OSError:
                    pass
                stop_scraping.wait(0.5)

        scraper = threading.Thread(target=scrape)
        scraper.start()
        ready_at = {}

        def watch_ready():
            while len(ready_at) < PROBERS and time.time() - started < SECONDS:
                for p in range(PROBERS):
                    if p in ready_at:
                        continue
                    try:
                        with urllib.request.urlopen(f"http://127.0.0.1:{HTTP_BASE + p}/readyz", timeout=5) as r:
                            if r.status == 200:
                                ready_at[p] = time.time() - started
                    except OSError:
                        pass
                time.sleep(0.2)

        readiness = threading.Thread(target=watch_ready)
        readiness.start()
        # Attempts are keyed by (target, started_at_ms, prober, kind): each
        # poll reads the last 60 s of starts and keeps the keys it has seen.
        lags, newest_ages, seen, since_ms = [], [], set(), 0
        while time.time() - started < SECONDS:
            time.sleep(0.5)
            now_ms = time.time() * 1000
            rows = psql("SELECT t.name, a.started_at_ms, p.name, a.kind, a.started_at_ms + COALESCE(a.latency_ms, 0) "
                        "FROM attempts AS a JOIN target_names AS t ON t.id = a.target_id "
                        f"JOIN prober_names AS p ON p.id = a.prober_id WHERE a.started_at_ms >= {since_ms}")
            newest = {}
            for line in rows.split():
                target, start, prober, kind, end = line.split("|")
                if (target, start, prober, kind) in seen:
                    continue
                seen.add((target, start, prober, kind))
                since_ms = max(since_ms, int(start) - 60_000)
                newest[prober] = max(newest.get(prober, 0.0), float(end))
                if time.time() - started >= WARMUP:
                    lags.append((now_ms - float(end)) / 1000)
            if time.time() - started >= WARMUP:
                for p in range(PROBERS):
                    if f"region{p}" in newest:
                        newest_ages.append((now_ms - newest[f"region{p}"]) / 1000)
        stop_scraping.set()
        scraper.join()
        readiness.join()
        cpu = 0.0
        for child in running:
            with open(f"/proc/{child.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            cpu += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        for child in running:
            child.send_signal(signal.SIGTERM)
        for child in running:
            child.wait(timeout=30)
        finished, write_errors = 0, 0
        for log in logs:
            log.seek(0)
            text = log.read()
            write_errors += text.count("database write failed")
            m = re.findall(r"finished=(\d+)", text)
            finished += int(m[-1]) if m else 0
        stored = int(psql("SELECT COUNT(*) FROM attempts").strip())
        distinct = int(psql("SELECT COUNT(*) FROM (SELECT DISTINCT target_id, started_at_ms, prober_id, kind FROM attempts) d").strip())
        spooled = sum(
            sum(1 for _ in open(os.path.join(work, f"data{p}", name)))
            for p in range(PROBERS)
            for name in os.listdir(os.path.join(work, f"data{p}"))
            if name.startswith("improbe-spool")
        )
        result = {
            "label": LABEL, "probers": PROBERS, "targets": TARGETS, "round_trip_ms": 2 * int(ONE_WAY_MS),
            "seconds": SECONDS,
            "write_lag_s": {"p50": round(percentile(lags, 50), 2), "p99": round(percentile(lags, 99), 2),
                            "max": round(max(lags), 2)},
            "newest_stored_age_s": {"p50": round(percentile(newest_ages, 50), 2),
                                    "max": round(max(newest_ages or [float("nan")]), 2)},
            "scrape_s": {"n": len(scrapes), "p50": round(percentile(scrapes, 50), 3),
                         "p99": round(percentile(scrapes, 99), 3), "max": round(max(scrapes or [float("nan")]), 3)},
            "all_ready_s": round(max(ready_at.values()), 1) if len(ready_at) == PROBERS else None,
            "connect_s": {"p50": round(percentile(connects, 50), 2), "max": round(max(connects), 2)},
            "sslmode": os.environ.get("SSLMODE") or "default",
            "write_errors": write_errors, "finished": finished, "stored": stored, "doubled": stored - distinct,
            "spooled": spooled, "cpu_s": round(cpu, 1), "logs": work,
        }
        print(json.dumps(result))
    finally:
        for child in children:
            child.terminate()
        for child in children:
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()


if __name__ == "__main__":
    main()
