#!/usr/bin/env bash
# The whole test suite: formatting, lints, and every test on SQLite and
# PostgreSQL. Starts the local PostgreSQL cluster if it is down, and installs
# the servers and tools the tests use. Under CI=true anything missing fails
# the run; elsewhere the tests that need what could not be had are left out
# by name, so the runner's summary counts them as skipped, never as passed.
set -euo pipefail
cd "$(dirname "$0")/.."

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }

if command -v pg_isready >/dev/null && ! pg_up && command -v pg_ctlcluster >/dev/null; then
  echo "starting PostgreSQL..."
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  for _ in $(seq 1 30); do pg_up && break; sleep 1; done
fi
if ! pg_up; then
  # Nearly every test runs on both backends: without PostgreSQL there is no
  # suite worth the name to run.
  echo "error: PostgreSQL is not reachable at 127.0.0.1:5432 (user postgres, trust auth); every backend test needs it" >&2
  exit 1
fi

# The HTML report is checked in headless Chromium (Debian's package).
if ! command -v chromium >/dev/null && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  echo "installing chromium for the report screenshot test..."
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-dejavu-core >/dev/null
fi

# The alert rules are unit-tested with promtool (Debian's prometheus package).
if ! command -v promtool >/dev/null && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  echo "installing prometheus (promtool) for the alert rule tests..."
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi

# The XMPP tests run a real Prosody server (Debian's package), started by
# the tests on loopback ports with their own config.
if ! command -v prosody >/dev/null && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  echo "installing prosody for the XMPP tests..."
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prosody >/dev/null
fi

# PostgreSQL through a connection pooler: Debian's PgBouncer, started by the
# tests on loopback ports with their own config.
if ! command -v pgbouncer >/dev/null && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  echo "installing pgbouncer for the connection pooler tests..."
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends pgbouncer >/dev/null
fi

# The container tests build both Dockerfiles with Debian's podman (runc as
# its runtime here) on images made from Debian's archive and this machine's
# Rust toolchain, once, and kept (scripts/container-base.sh).
if ! { command -v podman && command -v runc && command -v debootstrap; } >/dev/null \
   && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  echo "installing podman, runc and debootstrap for the container test..."
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    podman runc debootstrap >/dev/null
fi
if command -v podman >/dev/null && [ "$(id -u)" = 0 ]; then
  scripts/container-base.sh || { [ "${CI:-}" = "true" ] && exit 1; }
fi
# The deployment files are checked with PyYAML.
python3 -c 'import yaml' 2>/dev/null || python3 -m pip install --quiet pyyaml

# The Matrix tests run a real Synapse homeserver, from PyPI into a cached
# virtualenv (pinned: a new release is taken on purpose, not by surprise).
SYNAPSE_VERSION=1.163.2
export IMPROBE_SYNAPSE_VENV="${IMPROBE_SYNAPSE_VENV:-$HOME/.cache/improbe-synapse-venv}"
if ! "$IMPROBE_SYNAPSE_VENV/bin/python" -c "import synapse, sys; sys.exit(synapse.__version__ != '$SYNAPSE_VERSION')" 2>/dev/null; then
  echo "installing matrix-synapse $SYNAPSE_VERSION into $IMPROBE_SYNAPSE_VENV..."
  if ! python3 -m venv "$IMPROBE_SYNAPSE_VENV" 2>/dev/null && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    python3 -m venv "$IMPROBE_SYNAPSE_VENV"
  fi
  "$IMPROBE_SYNAPSE_VENV/bin/pip" install --quiet "matrix-synapse==$SYNAPSE_VERSION" || {
    echo "error: cannot install matrix-synapse; the Matrix tests need it" >&2
    [ "${CI:-}" = "true" ] && exit 1
  }
fi

# The /metrics test parses the exposition with Prometheus's own Python parser.
python3 -c 'import prometheus_client' 2>/dev/null || python3 -m pip install --quiet prometheus-client
# The email notification tests send through a real SMTP server (aiosmtpd).
python3 -c 'import aiosmtpd' 2>/dev/null || python3 -m pip install --quiet "aiosmtpd==1.4.6"
# ... with a certificate from a CA the tests make with openssl.
if ! command -v openssl >/dev/null && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssl >/dev/null
fi

# What could not be installed: under CI=true a failure, elsewhere the tests
# that need it are left out by name (tests/it/common/mod.rs `require`).
left_out=()
needs() { # needs <what> <nextest filterset of the tests> <check command...>
  local what=$1 tests=$2
  shift 2
  if ! "$@" >/dev/null 2>&1; then
    if [ "${CI:-}" = "true" ]; then
      echo "error: $what is missing and CI=true requires it ($tests)" >&2
      exit 1
    fi
    echo "left out, $what is missing: $tests"
    left_out+=("$tests")
  fi
}
needs "Synapse" 'test(/^matrix::/)' "$IMPROBE_SYNAPSE_VENV/bin/python" -c 'import synapse'
needs "Prosody" 'test(/^xmpp::/)' prosody --help
needs "Chromium" 'test(/chromium/)' sh -c 'command -v chromium || command -v chromium-browser || command -v google-chrome'
needs "promtool" 'test(/^alert_rules::/)' promtool --version
needs "aiosmtpd" 'test(/every_channel/)' python3 -c 'import aiosmtpd'
needs "podman and its base image" 'test(/^container::/) | test(/image_builds_from_source/)' podman image exists docker.io/library/debian:bookworm-slim
rust_image=docker.io/library/$(sed -n 's/^FROM \(rust:[^ ]*\).*/\1/p' Dockerfile | head -n 1)
needs "the Rust build image" 'test(/image_builds_from_source/)' podman image exists "$rust_image"
needs "root (chattr, a private PostgreSQL)" 'test(/^(faults|pg_network)::/)' test "$(id -u)" = 0
needs "PgBouncer" 'test(/^pg_network::.*(pgbouncer|transaction_mode)/)' sh -c 'command -v pgbouncer || test -x /usr/sbin/pgbouncer'

cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
if cargo nextest --version >/dev/null 2>&1; then
  filter=()
  if [ ${#left_out[@]} -gt 0 ]; then
    joined=$(printf ' | %s' "${left_out[@]}")
    filter=(-E "not (${joined:3})")
  fi
  # Two threads more than the cores: the slow set (.config/nextest.toml)
  # waits on the wall clock in slots of its own.
  cargo nextest run --locked --no-fail-fast --test-threads "$(( $(nproc) + 2 ))" "${filter[@]}"
else
  echo "cargo-nextest is missing: running cargo test, which runs one process for all tests" >&2
  cargo test --locked --all-targets --no-fail-fast
fi
