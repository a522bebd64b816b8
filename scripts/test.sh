#!/usr/bin/env bash
# The whole test suite: formatting, lints, and every test on SQLite and
# PostgreSQL. Starts the local PostgreSQL cluster if it is down. Under CI=true
# a missing PostgreSQL fails the run instead of skipping its half.
set -euo pipefail
cd "$(dirname "$0")/.."

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }

if command -v pg_isready >/dev/null && ! pg_up && command -v pg_ctlcluster >/dev/null; then
  echo "starting PostgreSQL..."
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  for _ in $(seq 1 30); do pg_up && break; sleep 1; done
fi
if [ "${CI:-}" = "true" ] && ! pg_up; then
  echo "error: PostgreSQL is not reachable at 127.0.0.1:5432 and CI=true requires it" >&2
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
if [ "${CI:-}" = "true" ] && ! command -v prosody >/dev/null; then
  echo "error: prosody is not installed and CI=true requires it (the XMPP tests)" >&2
  exit 1
fi

# The container test builds the Dockerfile with Debian's podman (runc as its
# runtime here) on a base image debootstrapped from Debian's archive, made
# once and kept (scripts/container-base.sh).
if ! { command -v podman && command -v runc && command -v debootstrap; } >/dev/null \
   && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  echo "installing podman, runc and debootstrap for the container test..."
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    podman runc debootstrap >/dev/null
fi
if command -v podman >/dev/null && [ "$(id -u)" = 0 ]; then
  scripts/container-base.sh || { [ "${CI:-}" = "true" ] && exit 1; }
fi
if [ "${CI:-}" = "true" ] && ! command -v podman >/dev/null; then
  echo "error: podman is not installed and CI=true requires it (the container test)" >&2
  exit 1
fi
# The deployment files are checked with PyYAML.
python3 -c 'import yaml' 2>/dev/null || python3 -m pip install --quiet pyyaml

# The fault tests run a private PostgreSQL server and set `chattr +i`.
if [ "${CI:-}" = "true" ] && [ "$(id -u)" != 0 ]; then
  echo "error: the storage fault tests need root (chattr, runuser); CI=true requires them" >&2
  exit 1
fi

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

cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --locked --no-fail-fast
else
  cargo test --locked --all-targets --no-fail-fast
fi
