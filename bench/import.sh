#!/usr/bin/env bash
# Import benchmark: N attempts (default 1,000,000) into a fresh SQLite file.
# Goal: under 20 s (docs/performance.md) on a 2-core machine.
# usage: bench/import.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-1000000}"
targets=10
out=bench/out; mkdir -p "$out"
# IMPROBE_BIN runs another build (a baseline) through the same steps.
if [ -z "${IMPROBE_BIN:-}" ]; then cargo build --release --quiet; fi
bin="${IMPROBE_BIN:-target/release/improbe}"
{
  printf '[prober]\nid = "bench"\n[database]\nurl = "sqlite://%s/import.db"\n' "$out"
  for t in $(seq 0 $((targets - 1))); do
    printf '[[targets]]\nname = "bench-%s"\nprovider = "simulator"\n[targets.sla]\nservice_start = "2026-03-17"\ntimezone = "Asia/Shanghai"\nmonthly_fee = "100"\n' "$t"
  done
} > "$out/import.toml"
[ -f "$out/attempts-$n.jsonl" ] || python3 bench/gen_attempts.py "$n" "$targets" > "$out/attempts-$n.jsonl"
rm -f "$out"/import.db*
"$bin" --config "$out/import.toml" migrate >/dev/null
echo "importing $n attempts into SQLite..."
start=$(date +%s.%N)
/usr/bin/time -f "peak RSS %M KiB, user %U s, system %S s" \
  "$bin" --config "$out/import.toml" import "$out/attempts-$n.jsonl"
end=$(date +%s.%N)
echo "wall clock: $(echo "$end - $start" | bc) s for $n attempts"
echo "re-import (idempotent, all duplicates):"
start=$(date +%s.%N)
"$bin" --config "$out/import.toml" import "$out/attempts-$n.jsonl"
end=$(date +%s.%N)
echo "wall clock: $(echo "$end - $start" | bc) s"
