#!/usr/bin/env bash
# Regenerates link-order.txt: the functions of the binary that a prober runs
# once it is ready, which build.rs asks the linker (lld) to place first and
# together in the machine code. A running prober's resident code is then the
# blocks around these functions, not blocks spread through the whole text
# (docs/performance.md, memory).
#
# Runs `improbe run` under callgrind (valgrind), which counts every function
# that runs, not a sample of them: first with simulator targets, /metrics,
# /readyz and /healthz scraped as Prometheus and a container health check
# would; then, where PHASES names them, the Matrix and XMPP phases of
# bench/probe.sh (a local Synapse and Prosody; scripts/test.sh installs
# them). In each run callgrind dumps and zeroes its counts when the prober
# unmaps its start-up code (daemon/footprint.rs, release_program), so what
# ran only while starting up is left out; whatever ran after it is kept, the
# simulator run's functions first, hottest first, then what each further
# phase adds.
#
# The list names symbols of one toolchain and one Cargo.lock: regenerate it
# when either changes. `scripts/link-order.sh --check` tells how many of the
# list's names the current release build still has.
#
# usage: scripts/link-order.sh [SECONDS]      (default 150 per run)
#        PHASES="sim 3 4" scripts/link-order.sh   (the default; 3 = Matrix, 4 = XMPP)
#        scripts/link-order.sh --check
set -euo pipefail
cd "$(dirname "$0")/.."
list=link-order.txt
bin=target/release/improbe

text_symbols() { nm --defined-only "$bin" | awk '$2 ~ /^[tTwW]$/ { print $3 }'; }

if [ "${1:-}" = "--check" ]; then
  cargo build --release --locked --quiet
  have=$(grep -v '^#' "$list" | sort -u | comm -12 - <(text_symbols | sort -u) | wc -l)
  echo "$have of $(grep -vc '^#' "$list") functions in $list are in $bin"
  exit 0
fi

command -v valgrind >/dev/null || { echo "needs valgrind (apt-get install valgrind)" >&2; exit 1; }
seconds="${1:-150}"
phases=" ${PHASES:-sim 3 4} "
# The names are the same with or without an order: build as the release is built.
cargo build --release --locked --quiet
work="$PWD/bench/out/link-order"; rm -rf "$work"; mkdir -p "$work"

# `run` under callgrind; every other command as it is.
cat > "$work/improbe" <<EOF
#!/usr/bin/env bash
case " \$* " in
  *" run "*)
    exec valgrind --tool=callgrind --demangle=no --dump-after='*footprint*release_program*' \
      --callgrind-out-file="$work/\$LINK_ORDER_PHASE.%p" "$PWD/$bin" "\$@" ;;
esac
exec "$PWD/$bin" "\$@"
EOF
chmod +x "$work/improbe"

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

if [[ "$phases" == *" sim "* ]]; then
  echo "== simulator: 20 targets x 3 operations every second, scraped every 5 s, ${seconds}s"
  $bin simulate --listen 127.0.0.1:19483 >/dev/null 2>&1 & pids+=($!)
  {
    printf '[prober]\nid = "link-order"\ndata_dir = "%s"\nlisten = "127.0.0.1:19484"\n[database]\nurl = "sqlite://%s/sim.db"\n' "$work" "$work"
    for t in $(seq 1 20); do
      printf '[[targets]]\nname = "t%s"\nprovider = "simulator"\ninterval = "1s"\ntimeout = "1s"\n[targets.simulator]\nendpoint = "http://127.0.0.1:19483"\n[targets.sla]\nservice_start = "2026-01-01"\ntimezone = "UTC"\nmonthly_fee = "1"\n' "$t"
    done
  } > "$work/sim.toml"
  $bin --config "$work/sim.toml" migrate >/dev/null
  LINK_ORDER_PHASE=1-sim "$work/improbe" --config "$work/sim.toml" run 2>"$work/sim.log" & ip=$!; pids+=($ip)
  end=$((SECONDS + seconds))
  while [ $SECONDS -lt $end ]; do
    for path in metrics readyz healthz; do curl -s "http://127.0.0.1:19484/$path" >/dev/null || true; done
    sleep 5
  done
  kill -TERM $ip; wait $ip || true
  echo "  attempts: $(sqlite3 "$work/sim.db" "SELECT outcome || ' ' || COUNT(*) FROM attempts GROUP BY outcome" | tr '\n' ' ')"
fi
for phase in 3 4; do
  if [[ "$phases" == *" $phase "* ]]; then
    LINK_ORDER_PHASE=$phase-probe IMPROBE_BIN="$work/improbe" PHASES=$phase bench/probe.sh "$seconds" | grep -v 'CPU per attempt\|peak RSS'
  fi
done

dumps=()
for d in "$work"/[0-9]-*; do
  case "${d##*/}" in *.*.*) ;; *) dumps+=("$d") ;; esac  # not the start-up dumps (NAME.PID.1)
done
[ ${#dumps[@]} -gt 0 ] || { echo "no callgrind dump found in $work" >&2; exit 1; }
for d in "${dumps[@]}"; do
  # Without the start-up dump, start-up would count as probing.
  [ -e "$d.1" ] || { echo "$d: callgrind never dumped at the release point; is daemon/footprint.rs's release_program still called that?" >&2; exit 1; }
done
text_symbols > "$work/symbols.txt"
python3 - "$list" "$work/symbols.txt" "${dumps[@]}" <<'PY'
import re, sys
out, symbols, dumps = sys.argv[1], sys.argv[2], sorted(sys.argv[3:])
in_binary = set(open(symbols).read().split())

def self_costs(path):
    """Each function's own instruction count in one callgrind dump. Names are
    compressed: `fn=(7) name` the first time (or `cfn=(7) name`), `fn=(7)` after."""
    names, costs, current, after_calls = {}, {}, None, False
    for line in open(path, errors="replace"):
        m = re.match(r"(c?fn)=\((\d+)\)(?: (.*))?$", line.rstrip("\n"))
        if m:
            kind, key, name = m.groups()
            if name:
                names[key] = name
            if kind == "fn":
                current = key
                costs.setdefault(key, 0)
            after_calls = False
            continue
        if line.startswith("calls="):
            after_calls = True  # the next cost line is the call's inclusive cost
            continue
        if current and re.match(r"[0-9+*-]", line):
            if not after_calls:
                costs[current] += int(line.split()[-1])
            after_calls = False
    return {names[k]: c for k, c in costs.items() if k in names}

order, seen = [], set()
for path in dumps:
    costs = self_costs(path)
    ran = [n for n, c in sorted(costs.items(), key=lambda kv: -kv[1]) if n in in_binary and n not in seen]
    print(f"  {path.rsplit('/', 1)[1]}: {len(ran)} more functions")
    order += ran
    seen.update(ran)
with open(out, "w") as f:
    f.write("# Written by scripts/link-order.sh: the functions a ready prober runs, placed first\n")
    f.write("# in the machine code by build.rs (docs/performance.md, memory). Do not edit by hand.\n")
    f.write("\n".join(order) + "\n")
print(f"{out}: {len(order)} functions")
PY
