#!/usr/bin/env bash
# Probing benchmark (docs/performance.md), all against local endpoints:
#  1. CPU time per attempt, improbe beside Prometheus blackbox_exporter (Debian
#     package prometheus-blackbox-exporter, an http POST module), both posting
#     to the same local endpoint (improbe's simulator) at the same rate (300
#     attempts/s: 100 targets x 3 operations every second), in one run; and
#     improbe's peak RSS with 100 targets, split into machine code (pages of
#     the binary) and data (everything else). Beside them, bench/floor.c
#     does the same socket work alone (a fresh connection per login, two
#     requests on kept ones, started in slots as improbe's are), so the least
#     CPU any client spends on that work is printed too, against
#     blackbox_exporter's.
#  2. Start lateness against the schedule with 1,000 targets at a 5 s interval.
#  3. Matrix: CPU time per attempt and peak RSS of improbe (only its own
#     process, not Synapse's) with 100 Matrix targets against a local Synapse
#     from the virtualenv scripts/test.sh installs, delivery confirmed.
#  4. XMPP: the same with 100 XMPP targets against a local Prosody (Debian's
#     package), STARTTLS with a CA made here, delivery confirmed.
#  5. provider = "http": CPU time per attempt of 100 targets describing
#     Tencent's REST API in TOML (bench/tencent-as-http.toml.in), beside 100
#     targets of the built-in Tencent adapter, on the same simulator at the
#     same rate (300 attempts/s), one after the other.
# usage: bench/probe.sh [SECONDS]   (default 60 per phase)
#        PHASES="1 2" bench/probe.sh 60   (only those phases; default all five)
#        CONFIRM=true bench/probe.sh 60   (phases 1 and 2 with the simulator's
#        sends read back from its histories, as Tencent targets do by
#        default, phase 1's targets each on a simulator of its own; without
#        it they are judged by the answer alone, like
#        blackbox_exporter's probes; CONFIRM=none leaves the key out, for
#        a baseline build older than it)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
phases=" ${PHASES:-1 2 3 4 5} "
confirm="${CONFIRM:-false}"
confirm_line="confirm_delivery = $confirm"$'\n'
[ "$confirm" = none ] && confirm_line=""
want() { [[ "$phases" == *" $1 "* ]]; }
out=bench/out; mkdir -p "$out"
if want 1; then
  command -v prometheus-blackbox-exporter >/dev/null || { echo "apt-get install prometheus-blackbox-exporter" >&2; exit 1; }
  cc -O2 -o "$out/floor" bench/floor.c
fi
# IMPROBE_BIN runs another build (a baseline) through the same steps.
if [ -z "${IMPROBE_BIN:-}" ]; then cargo build --release --quiet; fi
bin="${IMPROBE_BIN:-target/release/improbe}"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

source bench/readahead.sh
cold_cache
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
kernel_ticks() { awk '{print $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

$bin simulate --listen 127.0.0.1:19480 >/dev/null 2>&1 & pids+=($!)
endpoint=http://127.0.0.1:19480
# Read back, each target needs a conversation and a group of its own, as
# a real app's are: on one simulator all targets would share its accounts
# and group, and every read would page through the others' messages. So
# with confirm_delivery, target N of phase 1 has a simulator of its own
# (their CPU is not counted, as the single simulator's is not).
if [ "$confirm" = true ]; then
  for t in $(seq 1 100); do
    $bin simulate --listen "127.0.0.1:$((19500 + t))" >/dev/null 2>&1 & pids+=($!)
  done
fi
sleep 0.5

write_config() { # targets interval db
  {
    printf '[prober]\nid = "bench"\n[database]\nurl = "sqlite://%s"\n' "$3"
    for t in $(seq 1 "$1"); do
      local at=$endpoint
      if [ "$confirm" = true ] && [ "$1" = 100 ]; then at="http://127.0.0.1:$((19500 + t))"; fi
      printf '[[targets]]\nname = "t%s"\nprovider = "simulator"\ninterval = "%s"\ntimeout = "1s"\n[targets.simulator]\nendpoint = "%s"\n%s[targets.sla]\nservice_start = "2026-01-01"\ntimezone = "UTC"\nmonthly_fee = "1"\n' "$t" "$2" "$at" "$confirm_line"
    done
  } > "$out/probe-$1.toml"
}

if want 1; then
echo "== phase 1: 100 targets x 3 operations every second (300 attempts/s), beside blackbox_exporter at 300 probes/s, ${seconds}s"
cat > "$out/blackbox.yml" <<YML
modules:
  http_post:
    prober: http
    timeout: 2s
    http:
      method: POST
      headers:
        Content-Type: application/json
      body: '{"CheckItem":[{"UserID":"improbe_a"},{"UserID":"improbe_b"}]}'
      valid_status_codes: [200]
YML
prometheus-blackbox-exporter --config.file="$out/blackbox.yml" --web.listen-address=127.0.0.1:19115 >/dev/null 2>&1 & bb=$!; pids+=($bb)
rm -f "$out"/probe-100.db*
write_config 100 1s "$out/probe-100.db"
$bin --config "$out/probe-100.toml" migrate >/dev/null
sleep 0.5
$bin --config "$out/probe-100.toml" run 2>"$out/probe-100.log" & ip=$!; pids+=($ip)
bb0=$(cpu_ticks $bb); ip0=$(cpu_ticks $ip); ik0=$(kernel_ticks $ip)
# The same socket work as improbe's, alone, beside them: the floor.
"$out/floor" 19480 100 "$seconds" > "$out/floor.txt" & floor=$!; pids+=($floor)
python3 bench/blackbox_driver.py http://127.0.0.1:19115 \
  "$endpoint/v4/im_open_login_svc/account_check?sdkappid=1400000000&identifier=administrator&usersig=x&random=1&contenttype=json" \
  300 1 "$seconds" > "$out/blackbox-driver.txt"
bb1=$(cpu_ticks $bb); ip1=$(cpu_ticks $ip); ik1=$(kernel_ticks $ip)
wait $floor
rss_kb=$(awk '/VmHWM/ {print $2}' /proc/$ip/status)
code_kb=$(awk '/^RssFile/ {print $2}' /proc/$ip/status)
data_kb=$(awk '/^RssAnon/ {print $2}' /proc/$ip/status)
kill -TERM $ip; wait $ip || true
attempts=$(sqlite3 "$out/probe-100.db" "SELECT COUNT(*) FROM attempts")
ok=$(sqlite3 "$out/probe-100.db" "SELECT COUNT(*) FROM attempt_log WHERE outcome = 'ok'")
probes=$(sed -E 's/blackbox probes: ([0-9]+) done.*/\1/' "$out/blackbox-driver.txt")
floor_us=$(sed -E 's/.*CPU ([0-9.]+) us.*/\1/' "$out/floor.txt")
cat "$out/blackbox-driver.txt" "$out/floor.txt"
confirmed=$(sqlite3 "$out/probe-100.db" "SELECT COUNT(*) FROM attempt_log WHERE delivery = 'confirmed'")
echo "improbe attempts: $attempts ($ok ok), sends confirmed delivered: $confirmed (confirm_delivery = $confirm)"
python3 - "$ip0" "$ip1" "$bb0" "$bb1" "$hz" "$attempts" "$probes" "$rss_kb" "$code_kb" "$data_kb" "$ik0" "$ik1" "$floor_us" <<'PY'
import sys
ip0, ip1, bb0, bb1, hz, attempts, probes, rss, code, data, ik0, ik1, floor = map(float, sys.argv[1:])
ip = (ip1 - ip0) / hz / attempts * 1e6
bb = (bb1 - bb0) / hz / probes * 1e6
kernel = (ik1 - ik0) / max(ip1 - ip0, 1)
print(f"CPU per attempt: improbe {ip:.0f} us, blackbox_exporter {bb:.0f} us, ratio {ip / bb:.3f} (goal <= 0.05)")
print(f"improbe's CPU in the kernel: {kernel * 100:.0f} % (system time of its process, /proc/PID/stat): {ip * kernel:.0f} us per attempt")
print(f"the floor, the same socket work alone (bench/floor.c): {floor:.0f} us per operation, {floor / bb:.3f} x blackbox_exporter's CPU per probe")
print(f"improbe peak RSS with 100 targets: {rss / 1024:.1f} MiB (goal <= 15); at the end {(code + data) / 1024:.1f} MiB: machine code {code / 1024:.1f}, data {data / 1024:.1f}")
PY
echo "read-ahead on the binary's disk: $(readahead "$bin") KiB (resident code depends on it, docs/performance.md)"

fi

if want 2; then
echo "== phase 2: 1,000 targets x 3 operations every 5 s (600 attempts/s), ${seconds}s"
kill "${bb:-}" 2>/dev/null || true
rm -f "$out"/probe-1000.db*
write_config 1000 5s "$out/probe-1000.db"
$bin --config "$out/probe-1000.toml" migrate >/dev/null
$bin --log-format json --config "$out/probe-1000.toml" run 2>"$out/probe-1000.log" & ip=$!; pids+=($ip)
sleep "$seconds"
rss_kb=$(awk '/VmHWM/ {print $2}' /proc/$ip/status)
kill -TERM $ip; wait $ip || true
grep '"probing summary"' "$out/probe-1000.log" | python3 -c '
import json, sys
f = json.loads(sys.stdin.readline())["fields"]
print("starts:", f["started"], "scheduled:", f["scheduled"], "skipped (in flight):", f["skipped_in_flight"])
print("start lateness: p50", f["lateness_p50_ms"], "ms, p99", f["lateness_p99_ms"], "ms, max", round(f["lateness_max_us"] / 1000, 1), "ms (goal p99 < 50 ms)")'
echo "improbe peak RSS with 1,000 targets: $((rss_kb / 1024)) MiB"
fi

phase3() {
echo "== phase 3: 100 Matrix targets x 3 operations every 30 s (10 attempts/s) against a local Synapse, delivery confirmed, ${seconds}s"
venv="${IMPROBE_SYNAPSE_VENV:-$HOME/.cache/improbe-synapse-venv}"
if ! "$venv/bin/python" -c 'import synapse' 2>/dev/null; then
  echo "skipped: Synapse is not installed in $venv (scripts/test.sh installs it)"
  return 0
fi
# Synapse on PostgreSQL, as production homeservers run (its SQLite backend
# serialises every write and cannot carry 100 probing targets).
"$venv/bin/python" -c 'import psycopg2' 2>/dev/null || "$venv/bin/pip" install --quiet psycopg2-binary
psql -q -h 127.0.0.1 -U postgres -c 'DROP DATABASE IF EXISTS improbe_bench_synapse' \
  -c "CREATE DATABASE improbe_bench_synapse ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0"
syn="$out/synapse"; rm -rf "$syn"; mkdir -p "$syn"
relaxed="{per_second: 100000, burst_count: 100000}"
cat > "$syn/homeserver.yaml" <<YML
server_name: localhost
pid_file: $syn/homeserver.pid
listeners:
  - {port: 19008, bind_addresses: ['127.0.0.1'], type: http, tls: false, x_forwarded: false, resources: [{names: [client], compress: false}]}
database: {name: psycopg2, args: {user: postgres, host: 127.0.0.1, database: improbe_bench_synapse, cp_min: 5, cp_max: 10}}
media_store_path: $syn/media
signing_key_path: $syn/signing.key
registration_shared_secret: bench-secret
report_stats: false
trusted_key_servers: []
suppress_key_server_warning: true
bcrypt_rounds: 4
rc_message: $relaxed
rc_login: {address: $relaxed, account: $relaxed, failed_attempts: $relaxed}
YML
"$venv/bin/python" -m synapse.app.homeserver -c "$syn/homeserver.yaml" --generate-keys >/dev/null 2>&1
"$venv/bin/python" -m synapse.app.homeserver -c "$syn/homeserver.yaml" >"$syn/stdout.log" 2>&1 & pids+=($!)
for _ in $(seq 1 100); do curl -sf http://127.0.0.1:19008/_matrix/client/versions >/dev/null && break; sleep 0.2; done
# 100 targets, each with its own probe and recipient account and its own
# two rooms (as separate customers would be): a recipient's /sync wakes for
# its own target's messages only.
"$venv/bin/python" - <<'PY'
import hashlib, hmac, json, urllib.request
url = "http://127.0.0.1:19008/_synapse/admin/v1/register"
for n in range(1, 101):
    for user in (f"probe{n}", f"rx{n}"):
        nonce = json.load(urllib.request.urlopen(url))["nonce"]
        mac = hmac.new(b"bench-secret", f"{nonce}\0{user}\0bench-{user}\0notadmin".encode(), hashlib.sha1).hexdigest()
        body = json.dumps({"nonce": nonce, "username": user, "password": f"bench-{user}", "admin": False, "mac": mac}).encode()
        urllib.request.urlopen(urllib.request.Request(url, body, {"Content-Type": "application/json"}))
PY
matrix_config() { # database [rooms-file]
  printf '[prober]\nid = "bench"\n[database]\nurl = "sqlite://%s"\n' "$1"
  for t in $(seq 1 100); do
    printf '[[targets]]\nname = "m%s"\nprovider = "matrix"\ninterval = "30s"\ntimeout = "10s"\n[targets.matrix]\nhomeserver = "http://127.0.0.1:19008"\nuser = "@probe%s:localhost"\npassword = { env = "BENCH_PROBE_%s" }\nrecipient = "@rx%s:localhost"\nrecipient_password = { env = "BENCH_RX_%s" }\n' "$t" "$t" "$t" "$t" "$t"
    [ -n "${2:-}" ] && grep "^target m$t: " "$2" | sed -E 's/^target m[0-9]+: //; s/, /\n/'
    printf '[targets.sla]\nservice_start = "2026-01-01"\ntimezone = "UTC"\nmonthly_fee = "1"\n'
  done
}
for t in $(seq 1 100); do export "BENCH_PROBE_$t=bench-probe$t" "BENCH_RX_$t=bench-rx$t"; done
rm -f "$out"/matrix-100.db*
matrix_config "$out/matrix-100.db" > "$out/matrix-setup.toml"
$bin --config "$out/matrix-setup.toml" setup > "$out/matrix-rooms.txt"
matrix_config "$out/matrix-100.db" "$out/matrix-rooms.txt" > "$out/matrix-100.toml"
$bin --config "$out/matrix-100.toml" migrate >/dev/null
$bin --config "$out/matrix-100.toml" run 2>"$out/matrix-100.log" & ip=$!; pids+=($ip)
# Let every target's first login, session and recipient sync settle first.
sleep 35
ip0=$(cpu_ticks $ip); a0=$(sqlite3 "$out/matrix-100.db" "SELECT COUNT(*) FROM attempts")
sleep "$seconds"
ip1=$(cpu_ticks $ip); a1=$(sqlite3 "$out/matrix-100.db" "SELECT COUNT(*) FROM attempts")
rss_kb=$(awk '/VmHWM/ {print $2}' /proc/$ip/status)
kill -TERM $ip; wait $ip || true
sqlite3 "$out/matrix-100.db" "SELECT outcome, COALESCE(delivery, '-'), COUNT(*) FROM attempt_log GROUP BY 1, 2" | tr '|' ' ' | sed 's/^/  outcome, delivery, attempts: /'
python3 - "$ip0" "$ip1" "$hz" "$a0" "$a1" "$rss_kb" <<'PY'
import sys
ip0, ip1, hz, a0, a1, rss = map(float, sys.argv[1:])
print(f"Matrix CPU per attempt (improbe only): {(ip1 - ip0) / hz / (a1 - a0) * 1e6:.0f} us over {a1 - a0:.0f} attempts")
print(f"improbe peak RSS with 100 Matrix targets: {rss / 1024:.1f} MiB")
PY
}
want 3 && phase3

phase4() {
echo "== phase 4: 100 XMPP targets x 3 operations every 10 s (30 attempts/s) against a local Prosody, STARTTLS, delivery confirmed, ${seconds}s"
if ! command -v prosody >/dev/null; then
  echo "skipped: Prosody is not installed (scripts/test.sh installs Debian's package)"
  return 0
fi
pro="$PWD/$out/prosody"; rm -rf "$pro"; mkdir -p "$pro/data" "$pro/certs"
(
  cd "$pro"
  printf 'subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' > server.ext
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem -days 2 \
    -subj "/CN=improbe bench CA" -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout server.key -out server.csr -subj /CN=localhost 2>/dev/null
  openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 -extfile server.ext 2>/dev/null
)
cat > "$pro/prosody.cfg.lua" <<LUA
run_as_root = true
pidfile = "$pro/prosody.pid"
data_path = "$pro/data"
certificates = "$pro/certs"
log = { warn = "$pro/prosody.log" }
modules_enabled = { "roster"; "saslauth"; "tls"; "disco"; "ping" }
modules_disabled = { "s2s" }
c2s_ports = { 19222 }
c2s_interfaces = { "127.0.0.1" }
s2s_ports = { }
c2s_require_encryption = true
authentication = "internal_hashed"
VirtualHost "localhost"
  ssl = { certificate = "$pro/server.pem"; key = "$pro/server.key" }
Component "conference.localhost" "muc"
  restrict_room_creation = false
LUA
# 100 targets, each with its own probe and recipient account and its own room.
for t in $(seq 1 100); do echo "probe$t"; echo "rx$t"; done \
  | xargs -P 4 -I{} prosodyctl --config "$pro/prosody.cfg.lua" register {} localhost bench-{} >/dev/null 2>&1
prosody --config "$pro/prosody.cfg.lua" -F >/dev/null 2>&1 & pids+=($!)
for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/19222) 2>/dev/null && break; sleep 0.1; done
for t in $(seq 1 100); do export "BENCH_XPROBE_$t=bench-probe$t" "BENCH_XRX_$t=bench-rx$t"; done
{
  printf '[prober]\nid = "bench"\n[database]\nurl = "sqlite://%s"\n' "$out/xmpp-100.db"
  for t in $(seq 1 100); do
    printf '[[targets]]\nname = "x%s"\nprovider = "xmpp"\ninterval = "10s"\ntimeout = "5s"\n[targets.xmpp]\njid = "probe%s@localhost"\npassword = { env = "BENCH_XPROBE_%s" }\nserver = "127.0.0.1:19222"\nca_file = "%s"\nrecipient = "rx%s@localhost"\nrecipient_password = { env = "BENCH_XRX_%s" }\ngroup_room = "room%s@conference.localhost"\n' "$t" "$t" "$t" "$pro/ca.pem" "$t" "$t" "$t"
    printf '[targets.sla]\nservice_start = "2026-01-01"\ntimezone = "UTC"\nmonthly_fee = "1"\n'
  done
} > "$out/xmpp-100.toml"
rm -f "$out"/xmpp-100.db*
$bin --config "$out/xmpp-100.toml" setup > "$out/xmpp-rooms.txt"
$bin --config "$out/xmpp-100.toml" migrate >/dev/null
$bin --config "$out/xmpp-100.toml" run 2>"$out/xmpp-100.log" & ip=$!; pids+=($ip)
# Let every target's sessions and room joins settle first.
sleep 15
ip0=$(cpu_ticks $ip); a0=$(sqlite3 "$out/xmpp-100.db" "SELECT COUNT(*) FROM attempts")
sleep "$seconds"
ip1=$(cpu_ticks $ip); a1=$(sqlite3 "$out/xmpp-100.db" "SELECT COUNT(*) FROM attempts")
rss_kb=$(awk '/VmHWM/ {print $2}' /proc/$ip/status)
kill -TERM $ip; wait $ip || true
sqlite3 "$out/xmpp-100.db" "SELECT outcome, COALESCE(delivery, '-'), COUNT(*) FROM attempt_log GROUP BY 1, 2" | tr '|' ' ' | sed 's/^/  outcome, delivery, attempts: /'
python3 - "$ip0" "$ip1" "$hz" "$a0" "$a1" "$rss_kb" <<'PY'
import sys
ip0, ip1, hz, a0, a1, rss = map(float, sys.argv[1:])
print(f"XMPP CPU per attempt (improbe only): {(ip1 - ip0) / hz / (a1 - a0) * 1e6:.0f} us over {a1 - a0:.0f} attempts")
print(f"improbe peak RSS with 100 XMPP targets: {rss / 1024:.1f} MiB")
PY
}
want 4 && phase4

phase5() {
echo "== phase 5: 100 http targets (Tencent's REST API described in TOML) beside 100 Tencent-adapter targets, 300 attempts/s each, ${seconds}s each"
usersig=$(python3 bench/usersig.py)
cpu_per_attempt() { # config db -> "us attempts ok"
  rm -f "$2"*
  $bin --config "$1" migrate >/dev/null
  $bin --config "$1" run 2>/dev/null & local ip=$!; pids+=($ip)
  sleep 3
  local c0 a0 c1 a1
  c0=$(cpu_ticks $ip); a0=$(sqlite3 "$2" "SELECT COUNT(*) FROM attempts")
  sleep "$seconds"
  c1=$(cpu_ticks $ip); a1=$(sqlite3 "$2" "SELECT COUNT(*) FROM attempts")
  kill -TERM $ip; wait $ip || true
  echo "$(( (c1 - c0) * 1000000 / hz / (a1 - a0) )) $((a1 - a0)) $(sqlite3 "$2" "SELECT COUNT(*) FROM attempt_log WHERE outcome = 'ok'")"
}
{
  printf '[prober]\nid = "bench"\n[database]\nurl = "sqlite://%s"\n' "$out/http-100.db"
  for t in $(seq 1 100); do
    sed "s|@N@|$t|; s|@ENDPOINT@|$endpoint|; s|@USERSIG@|$usersig|" bench/tencent-as-http.toml.in
  done
} > "$out/http-100.toml"
confirm=false write_config 100 1s "$out/tencent-100.db"
read -r tencent_us tencent_n tencent_ok < <(cpu_per_attempt "$out/probe-100.toml" "$out/tencent-100.db")
read -r http_us http_n http_ok < <(cpu_per_attempt "$out/http-100.toml" "$out/http-100.db")
echo "Tencent adapter: $tencent_us us per attempt over $tencent_n attempts ($tencent_ok ok in all)"
echo "http provider:   $http_us us per attempt over $http_n attempts ($http_ok ok in all)"
python3 -c "print(f'ratio http / Tencent: {$http_us / $tencent_us:.2f} (goal <= 1.5)')"
}
want 5 && phase5
exit 0
