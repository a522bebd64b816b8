#!/usr/bin/env bash
# Storage benchmark (docs/performance.md "Storage"): D days of T targets at
# the default cadence (bench/gen_history.py, kept in bench/out/storage for
# the next run), imported a day at a time into
# SQLite and PostgreSQL, then one `improbe compact`. Prints, per backend,
# the bytes per target per day before and after (the database on disk:
# the SQLite file after a checkpoint, pg_database_size less an empty
# database's), the round's time and longest transaction, and the times of
# `sla` (every target, every month) and `report --format json`.
#
# usage: bench/storage.sh [DAYS] [TARGETS]     (default 30 10)
# IMPROBE_BIN=path runs another build (a baseline) through the same steps;
# a build without `compact` is measured as imported. BACKENDS="sqlite" (or
# "postgres") measures one backend only (default: both).
backends="${BACKENDS:-sqlite postgres}"
set -euo pipefail
cd "$(dirname "$0")/.."
days="${1:-30}"
targets="${2:-10}"
out=bench/out/storage; mkdir -p "$out"
if [ -z "${IMPROBE_BIN:-}" ]; then cargo build --release --quiet; fi
bin="$(realpath "${IMPROBE_BIN:-target/release/improbe}")"
pg_admin="${IMPROBE_TEST_POSTGRES:-postgres://postgres@127.0.0.1:5432/postgres}"
pg_server="${pg_admin%/*}"
raw_window=7

config() { # config URL
  printf '[prober]\nid = "bench"\n[database]\nurl = "%s"\n' "$1"
  for t in $(seq 0 $((targets - 1))); do
    printf '[[targets]]\nname = "bench-%s"\nprovider = "simulator"\n[targets.sla]\nservice_start = "2026-01-01"\ntimezone = "UTC"\nmonthly_fee = "100"\n' "$t"
  done
}

seconds() { local s; s=$(date +%s.%N); "$@" >/dev/null; echo "$(date +%s.%N) - $s" | bc; }

measure() { # measure BACKEND URL EMPTY_BYTES
  local backend=$1 url=$2 empty=$3 cfg="$out/$1.toml"
  config "$url" > "$cfg"
  "$bin" --config "$cfg" migrate >/dev/null
  local import_s=0
  for d in $(seq 0 $((days - 1))); do
    local day="$out/day-$d-of-$targets.jsonl"
    [ -f "$day" ] || python3 bench/gen_history.py "$d" "$targets" > "$day"
    s=$(seconds "$bin" --config "$cfg" import "$day")
    import_s=$(echo "$import_s + $s" | bc)
  done
  local before after per_day_before per_day_after compact_json="{}"
  before=$(db_bytes "$backend" "$url")
  if "$bin" --help | grep -q '^  compact'; then
    # The import's pages reach the disk first: otherwise the round's first
    # commit waits for the kernel's writeback of them (300 ms seen), which
    # is the import's cost, not the round's.
    sync
    local start; start=$(date +%s.%N)
    compact_json=$("$bin" --config "$cfg" compact --format json)
    compact_s=$(echo "$(date +%s.%N) - $start" | bc)
  else
    compact_s=0
  fi
  after=$(db_bytes "$backend" "$url")
  # The daemon's hourly round folds what left the raw window since the last
  # one: one more day of every target, then a round over it.
  local next="$out/day-$days-of-$targets.jsonl" steady_s=0 steady_json="{}"
  [ -f "$next" ] || python3 bench/gen_history.py "$days" "$targets" > "$next"
  "$bin" --config "$cfg" import "$next" >/dev/null
  if [ "$compact_s" != 0 ]; then
    sync
    local start; start=$(date +%s.%N)
    steady_json=$("$bin" --config "$cfg" compact --format json)
    steady_s=$(echo "$(date +%s.%N) - $start" | bc)
  fi
  per_day_before=$(( (before - empty) / (days * targets) ))
  per_day_after=$(( (after - empty) / (days * targets) ))
  local sla_s report_s
  sla_s=$(seconds "$bin" --config "$cfg" sla --format json)
  report_s=$(seconds "$bin" --config "$cfg" report --target bench-0 --date 2026-01-15 --format json)
  longest=$(echo "$compact_json" | python3 -c 'import json,sys; j=json.load(sys.stdin); print(j.get("longest_transaction_ms", "-"), "/", j.get("longest_writer_wait_ms", "-"))')
  # A year of one target: the raw window at the imported rate, the rest folded.
  year=$(( (raw_window * per_day_before + (365 - raw_window) * per_day_after) / 1000000 ))
  steady=$(echo "$steady_json" | python3 -c 'import json,sys; j=json.load(sys.stdin); print(j.get("longest_transaction_ms", "-"), "/", j.get("longest_writer_wait_ms", "-"))')
  printf '%-8s import %6.1f s | bytes/target/day %8d before, %8d after | compact of all %6.1f s (longest transaction / writer wait %s ms), of one more day %5.1f s (%s ms) | sla %5.2f s, report %5.2f s | a year of one target ~%d MB\n' \
    "$backend" "$import_s" "$per_day_before" "$per_day_after" "$compact_s" "$longest" "$steady_s" "$steady" "$sla_s" "$report_s" "$year"
}

db_bytes() { # db_bytes BACKEND URL
  if [ "$1" = sqlite ]; then
    local file="${2#sqlite://}"
    sqlite_checkpoint "$file"
    stat -c %s "$file"
  else
    psql "$2" -Atc "SELECT pg_database_size(current_database())"
  fi
}

sqlite_checkpoint() { python3 -c 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute("PRAGMA wal_checkpoint(TRUNCATE)"); c.close()' "$1"; }

echo "$days days of $targets targets, $(( days * targets * 51840 )) attempts, with $bin"
if [[ " $backends " == *" sqlite "* ]]; then
  rm -f "$out"/bench.db*
  measure sqlite "sqlite://$(realpath "$out")/bench.db" 0
fi
if [[ " $backends " == *" postgres "* ]]; then
  db="improbe_storage_bench"
  psql "$pg_admin" -qc "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
  empty=$(psql "$pg_server/$db" -Atc "SELECT pg_database_size(current_database())")
  measure postgres "$pg_server/$db" "$empty"
  psql "$pg_admin" -qc "DROP DATABASE IF EXISTS $db"
fi
