#!/usr/bin/env bash
# SLA benchmark: `improbe sla` over a year of minute verdicts for 100 targets
# (52.6 million minutes) in SQLite. Goal: under 1 s (docs/performance.md).
# The verdicts are generated in SQL (running a year of probes through the
# import would take far longer than the thing measured); the hourly roll-up is
# derived from them exactly as the store maintains it.
# usage: bench/sla.sh [TARGETS]
set -euo pipefail
cd "$(dirname "$0")/.."
targets="${1:-100}"
out=bench/out; mkdir -p "$out"
db="$out/sla-$targets.db"
# IMPROBE_BIN runs another build (a baseline) through the same steps.
if [ -z "${IMPROBE_BIN:-}" ]; then cargo build --release --quiet; fi
bin="${IMPROBE_BIN:-target/release/improbe}"
# Zones alternate so that some months start on the hour in UTC and some not
# (Kathmandu is UTC+05:45), which exercises the partial-hour edges.
zones=("Asia/Shanghai" "Europe/Berlin" "Asia/Kathmandu" "America/New_York")
{
  printf '[prober]\nid = "bench"\n[database]\nurl = "sqlite://%s"\n' "$db"
  for t in $(seq 0 $((targets - 1))); do
    printf '[[targets]]\nname = "bench-%s"\nprovider = "simulator"\n[targets.sla]\nservice_start = "2025-11-26"\ntimezone = "%s"\nmonthly_fee = "1200.00"\n' \
      "$t" "${zones[$((t % 4))]}"
  done
} > "$out/sla.toml"
if [ ! -f "$db" ]; then
  # Verdicts as the codes of migration 0010: 0 available, 1 failure, 2 no_data.
  echo "generating a year of minute verdicts for $targets targets (once; takes a while)..."
  "$bin" --config "$out/sla.toml" migrate >/dev/null
  # Since migration 0011 verdicts name their target by id (a build before
  # it, as a baseline, by name).
  if [ -n "$(sqlite3 "$db" "SELECT 1 FROM sqlite_master WHERE name = 'target_names'")" ]; then
    target_col=target_id; hours_from="verdicts JOIN target_names ON target_names.id = verdicts.target_id"; hour_target=name
  else
    target_col=target; hours_from=verdicts; hour_target=target
  fi
  first=$(( $(date -d 2025-11-25T00:00:00Z +%s) / 60 ))
  last=$(( $(date -d 2026-11-27T00:00:00Z +%s) / 60 ))
  {
    echo "PRAGMA synchronous = OFF; BEGIN;"
    for t in $(seq 0 $((targets - 1))); do
      if [ "$target_col" = target_id ]; then
        echo "INSERT INTO target_names (name) VALUES ('bench-$t');"
        target_value="(SELECT id FROM target_names WHERE name = 'bench-$t')"
      else
        target_value="'bench-$t'"
      fi
      cat <<SQL
WITH RECURSIVE m(x) AS (SELECT $first UNION ALL SELECT x + 1 FROM m WHERE x < $last)
INSERT INTO verdicts ($target_col, minute, verdict, ok_attempts, fail_attempts, inconclusive_attempts, probers)
SELECT $target_value, x,
       CASE WHEN (x + $t) % 997 = 0 THEN 1 WHEN (x + $t) % 1009 = 0 THEN 2 ELSE 0 END,
       CASE WHEN (x + $t) % 997 = 0 OR (x + $t) % 1009 = 0 THEN 0 ELSE 12 END,
       CASE WHEN (x + $t) % 997 = 0 THEN 12 ELSE 0 END,
       CASE WHEN (x + $t) % 1009 = 0 THEN 12 ELSE 0 END, 1
FROM m;
SQL
    done
    cat <<SQL
INSERT INTO verdict_hours (target, hour, available_minutes, failure_minutes)
SELECT $hour_target, minute / 60, SUM(verdict = 0), SUM(verdict = 1) FROM $hours_from GROUP BY $hour_target, minute / 60;
COMMIT;
SQL
  } | sqlite3 "$db"
fi
echo "rows: $(sqlite3 "$db" 'SELECT COUNT(*) FROM verdicts') minute verdicts, $(sqlite3 "$db" 'SELECT COUNT(*) FROM verdict_hours') hour roll-ups"
"$bin" --config "$out/sla.toml" sla --format json > "$out/sla.json"
echo "statements: $(grep -c '"month"' "$out/sla.json")"
for run in 1 2 3 4 5; do
  /usr/bin/time -f "run $run: %e s wall, %U s user, %S s system, peak RSS %M KiB" \
    "$bin" --config "$out/sla.toml" sla --format json > /dev/null
done
