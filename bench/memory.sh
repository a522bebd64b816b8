#!/usr/bin/env bash
# Where a running prober's memory goes (docs/performance.md): `improbe run` with
# TARGETS simulator targets x 3 operations every INTERVAL against a local
# simulator, then its resident memory by mapping (the binary's code pages,
# the heap and other anonymous data, shared libraries) from
# /proc/PID/smaps, its peak RSS, its CPU time per attempt over the
# measured SECONDS, and what a container's memory cgroup is charged for it:
# `migrate` and `run` go into a memory cgroup of their own, made here (as
# root: cgroup v2's memory.current and memory.peak, or v1's
# memory.usage_in_bytes and memory.max_usage_in_bytes), which counts the
# program file's pages it reads into the page cache whether or not they
# stay mapped.
# usage: bench/memory.sh [TARGETS INTERVAL SECONDS]   (default 100 1s 15)
#        IMPROBE_BIN=path bench/memory.sh ...          (another build, e.g. a baseline)
set -euo pipefail
cd "$(dirname "$0")/.."
targets="${1:-100}"; interval="${2:-1s}"; seconds="${3:-15}"
out=bench/out; mkdir -p "$out"
if [ -z "${IMPROBE_BIN:-}" ]; then cargo build --release --quiet; fi
bin="${IMPROBE_BIN:-target/release/improbe}"
source bench/readahead.sh
cold_cache
pids=()
cg=""
if [ -w /sys/fs/cgroup/cgroup.subtree_control ] && grep -qw memory /sys/fs/cgroup/cgroup.controllers; then
  cg=/sys/fs/cgroup/improbe-bench-$$; now=memory.current; peak=memory.peak
elif [ -w /sys/fs/cgroup/memory ]; then
  cg=/sys/fs/cgroup/memory/improbe-bench-$$; now=memory.usage_in_bytes; peak=memory.max_usage_in_bytes
fi
[ -n "$cg" ] && mkdir "$cg"
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -n "$cg" ] && rmdir "$cg" 2>/dev/null || true
}
trap cleanup EXIT
# Runs a command inside the bench's cgroup, where there is one.
in_cgroup() { if [ -n "$cg" ]; then echo "$BASHPID" > "$cg/cgroup.procs"; fi; exec "$@"; }
$bin simulate --listen 127.0.0.1:19482 >/dev/null 2>&1 & pids+=($!)
db="$out/memory.db"; rm -f "$db"*
{
  printf '[prober]\nid = "bench"\ndata_dir = "%s"\n[database]\nurl = "sqlite://%s"\n' "$out" "$db"
  for t in $(seq 1 "$targets"); do
    printf '[[targets]]\nname = "t%s"\nprovider = "simulator"\ninterval = "%s"\ntimeout = "1s"\n[targets.simulator]\nendpoint = "http://127.0.0.1:19482"\n[targets.sla]\nservice_start = "2026-01-01"\ntimezone = "UTC"\nmonthly_fee = "1"\n' "$t" "$interval"
  done
} > "$out/memory.toml"
(in_cgroup $bin --config "$out/memory.toml" migrate >/dev/null)
(in_cgroup $bin --config "$out/memory.toml" run 2>/dev/null) & ip=$!; pids+=($ip)
sleep 3
t0=$(awk '{print $14 + $15}' "/proc/$ip/stat"); a0=$(sqlite3 "$db" "SELECT COUNT(*) FROM attempts")
sleep "$seconds"
t1=$(awk '{print $14 + $15}' "/proc/$ip/stat"); a1=$(sqlite3 "$db" "SELECT COUNT(*) FROM attempts")
echo "targets: $targets x 3 operations every $interval; after $((seconds + 3)) s:"
awk -v bin="$(basename "$bin")" '
  /^[0-9a-f]+-[0-9a-f]+ / { name = $6; if (name == "") name = "anonymous"; else if (name ~ bin "$") name = "machine code (the binary)"; else if (name ~ /\.so/) name = "shared libraries"; else if (name ~ /^\[heap\]/) name = "heap"; else if (name ~ /^\[/) name = "anonymous" }
  /^Rss:/ { kb[name] += $2 }
  END { for (k in kb) printf "  %-28s %6.1f MiB\n", k, kb[k] / 1024 }' "/proc/$ip/smaps" | sort -k1,1
awk '/VmHWM/ { printf "  peak RSS                     %6.1f MiB\n", $2 / 1024 }' "/proc/$ip/status"
awk '/RssAnon|RssFile/ { kb += $2 } END { printf "  anonymous + file RSS now     %6.1f MiB\n", kb / 1024 }' "/proc/$ip/status"
if [ -n "$cg" ]; then
  awk '{ printf "  cgroup charged now           %6.1f MiB\n", $1 / 1048576 }' "$cg/$now"
  awk '{ printf "  cgroup charged at peak       %6.1f MiB\n", $1 / 1048576 }' "$cg/$peak"
else
  echo "  cgroup charged: no memory cgroup can be made here (needs root)"
fi
python3 -c "import sys; t0, t1, a0, a1, hz = map(float, sys.argv[1:]); print(f'  CPU per attempt              {(t1 - t0) / hz / max(a1 - a0, 1) * 1e6:6.0f} us over {a1 - a0:.0f} attempts')" "$t0" "$t1" "$a0" "$a1" "$(getconf CLK_TCK)"
echo "  read-ahead on the binary's disk: $(readahead "$bin") KiB"
