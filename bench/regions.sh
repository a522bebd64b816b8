#!/usr/bin/env bash
# Many regions, one database (docs/many-regions.md, docs/performance.md): N probers x T
# targets writing one local PostgreSQL through bench/delay_proxy.py, which
# delays every packet in each direction. Reports write lag, /metrics scrape
# time, stored against finished attempts, and CPU (bench/regions.py).
#
# usage: bench/regions.sh [PROBERS TARGETS ONE_WAY_MS SECONDS]   (default 10 50 100 90)
#        BASELINE=REV bench/regions.sh ...   also runs the build of git
#        revision REV (built once into bench/out/baseline-REV), side by side
set -euo pipefail
cd "$(dirname "$0")/.."
probers="${1:-10}" targets="${2:-50}" one_way="${3:-100}" seconds="${4:-90}"
out=bench/out; mkdir -p "$out"
pg_isready -q -h 127.0.0.1 -p 5432 || { echo "PostgreSQL must answer on 127.0.0.1:5432" >&2; exit 1; }
cargo build --release --quiet
if [ -n "${BASELINE:-}" ]; then
  base="$out/baseline-$BASELINE"
  if [ ! -x "$base/target/release/improbe" ]; then
    rm -rf "$base"; git worktree prune
    git worktree add --detach "$base" "$BASELINE" >/dev/null
    (cd "$base" && cargo build --release --quiet)
  fi
  python3 bench/regions.py "$base/target/release/improbe" "$probers" "$targets" "$one_way" "$seconds" "baseline $BASELINE"
fi
python3 bench/regions.py target/release/improbe "$probers" "$targets" "$one_way" "$seconds" "this build"
