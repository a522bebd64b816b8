#!/usr/bin/env bash
# Descriptors (docs/operations.md "Metrics and health"): how many `improbe run` holds
# with 1 and 100 simulator targets (every operation each second, sampled
# every 250 ms for 10 s), and the crowded-listener scenario of docs/operations.md: a
# 64-descriptor limit, 80 idle connections held against the listener for
# 8 s, then the attempts' outcomes.
#   bench/descriptors.sh                 # this tree's release build
#   IMPROBE_BIN=/path/to/improbe bench/descriptors.sh   # another build
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${IMPROBE_BIN:-target/release/improbe}"
[ -n "${IMPROBE_BIN:-}" ] || cargo build --release --quiet
BIN="$(realpath "$BIN")"
DIR="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$DIR"' EXIT
SIM=18181 LISTEN=19191
"$BIN" simulate --listen "127.0.0.1:$SIM" >/dev/null 2>&1 &
sleep 0.5

config() { # config NAME TARGETS
  {
    printf '[prober]\nid = "fd"\nlisten = "127.0.0.1:%s"\ndata_dir = "%s"\n' "$LISTEN" "$DIR"
    printf '[database]\nurl = "sqlite://%s/%s.db"\n' "$DIR" "$1"
    for i in $(seq 1 "$2"); do
      printf '[[targets]]\nname = "t%s"\nprovider = "simulator"\ninterval = "1s"\ntimeout = "1s"\n' "$i"
      printf '[targets.simulator]\nendpoint = "http://127.0.0.1:%s"\n' "$SIM"
      printf '[targets.sla]\nservice_start = "2026-01-01"\ntimezone = "UTC"\nmonthly_fee = "1"\n'
    done
  } > "$DIR/$1.toml"
}

for targets in 1 100; do
  config "t$targets" "$targets"
  "$BIN" --config "$DIR/t$targets.toml" run 2>/dev/null & pid=$!
  most=0
  for _ in $(seq 1 40); do
    sleep 0.25
    n=$(ls "/proc/$pid/fd" 2>/dev/null | wc -l)
    [ "$n" -gt "$most" ] && most=$n
  done
  kill -TERM "$pid"; wait "$pid" || true
  echo "targets=$targets most_descriptors=$most"
done

config crowded 1
prlimit --nofile=64:64 "$BIN" --config "$DIR/crowded.toml" run 2>/dev/null & pid=$!
sleep 2
python3 - "$LISTEN" <<'PY'
import socket, sys, time
held = [socket.create_connection(("127.0.0.1", int(sys.argv[1]))) for _ in range(80)]
time.sleep(8)
PY
kill -TERM "$pid"; wait "$pid" || true
echo "crowded listener (nofile 64, 80 idle connections), attempts by outcome:"
sqlite3 "$DIR/crowded.db" "SELECT outcome, COALESCE(reason, '-'), substr(COALESCE(error, '-'), 1, 50), COUNT(*) FROM attempts GROUP BY 1, 2, 3"
