#!/usr/bin/env bash
# The operators' console (console/, served at /console/) end to end in headless Chromium, on both
# stores: two fresh local servers (their own ports and data directories; one on the embedded
# store, one on DynamoDB Local with a table of its own), each given a paid session over the API;
# then console/test/console.test.cjs (node's test runner, playwright-core) signs in with an
# operator's token, finds the session by its vehicle number, refunds 10.00 with a reason,
# follows the refund to SUCCESS, downloads the day's settlement CSV and checks its rows.
# Artifacts in target/console/: console.png (the page at the end, embedded store),
# console-dynamodb.png, and the CSVs downloaded.
#
# Installs what it needs on a fresh machine: Debian's chromium (apt-get, when /usr/bin/chromium
# is absent; as root) and npm playwright-core (pinned) into .tools/console-test. DynamoDB Local:
# the one at PARKPAY_DYNAMODB_ENDPOINT (scripts/test.sh starts it), else one of its own.
#   bash scripts/console-test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
start=$SECONDS

# --- Tools -----------------------------------------------------------------------------------
chromium=/usr/bin/chromium
if [ ! -x "$chromium" ]; then
  command -v apt-get >/dev/null || { echo "Debian's chromium is needed (apt-get install chromium)" >&2; exit 1; }
  [ "$(id -u)" = 0 ] || { echo "Debian's chromium is needed: run as root, or apt-get install chromium" >&2; exit 1; }
  echo "installing Debian's chromium (apt-get)" >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >&2
fi
tools=.tools/console-test
playwright=1.65.1
if [ ! -f "$tools/node_modules/playwright-core/package.json" ] || [ "$(cat "$tools/.version" 2>/dev/null)" != "$playwright" ]; then
  command -v npm >/dev/null || { echo "npm is needed to install playwright-core (apt-get install nodejs npm)" >&2; exit 1; }
  echo "installing playwright-core@$playwright into $tools" >&2
  rm -rf "$tools"
  mkdir -p "$tools"
  # playwright-core downloads no browser: it drives the Chromium above.
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --silent --no-audit --no-fund --prefix "$tools" \
    "playwright-core@$playwright" >&2
  echo "$playwright" >"$tools/.version"
fi

# --- Servers ---------------------------------------------------------------------------------
export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-parkpaylocal} AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-parkpaylocal}
export AWS_REGION=${AWS_REGION:-ap-south-1} AWS_EC2_METADATA_DISABLED=true
# The debug build scripts/test.sh has just made; built here when missing or older than a source
# (the console's files are compiled into it).
bin="${CARGO_TARGET_DIR:-target}/debug/parkpay-local"
if [ ! -x "$bin" ] || [ -n "$(find console shared functions Cargo.toml Cargo.lock -newer "$bin" -type f \
    -not -path 'console/test/*' -not -path '*/tests/*' -print -quit)" ]; then
  cargo build -q -p parkpay-local
fi

pids=()
dirs=()
logs=()
ddb_pid=
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ -n "${ddb_pid:-}" ]; then kill "$ddb_pid" 2>/dev/null || true; wait "$ddb_pid" 2>/dev/null || true; fi
  for dir in "${dirs[@]}"; do rm -rf "$dir"; done
}
trap cleanup EXIT

if [ -z "${PARKPAY_DYNAMODB_ENDPOINT:-}" ]; then
  # shellcheck source=scripts/own-dynamodb-local.sh
  source scripts/own-dynamodb-local.sh
  own_dynamodb_local target/console/dynamodb-local.log 512m
  trap cleanup EXIT # own_dynamodb_local set its own; cleanup stops that one too (ddb_pid)
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start_server NAME [VAR=VALUE…]: a fresh server; appends "NAME=URL" to $servers.
servers=
start_server() {
  local name=$1
  shift
  local port data pid
  port=$(free_port)
  data=$(mktemp -d)
  dirs+=("$data")
  # Refunds settle 1.5 s after they are asked for: the page shows them PENDING, then follows them.
  env PARKPAY_ADDR="127.0.0.1:$port" PARKPAY_DATA_DIR="$data" PARKPAY_SIM_REFUND_SETTLE_MS=1500 "$@" \
    "$bin" >"$data/server.log" 2>&1 &
  pid=$!
  pids+=("$pid")
  logs+=("$name:$data/server.log")
  for _ in $(seq 1 150); do
    (echo >/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break
    kill -0 "$pid" 2>/dev/null || { cat "$data/server.log" >&2; echo "the $name server exited" >&2; exit 1; }
    sleep 0.1
  done
  servers="$servers $name=http://127.0.0.1:$port"
}
start_server embedded
start_server dynamodb PARKPAY_STORE=dynamodb PARKPAY_TABLE="console-test-$$-$RANDOM" \
  AWS_ENDPOINT_URL_DYNAMODB="$PARKPAY_DYNAMODB_ENDPOINT"

# --- The browser test ------------------------------------------------------------------------
out=$root/target/console
mkdir -p "$out"
rm -f "$out"/*.png "$out"/*.csv
echo "servers:$servers; Chromium: $("$chromium" --version 2>/dev/null | head -1); playwright-core $playwright"
rc=0
CONSOLE_TEST_SERVERS=$servers CONSOLE_TEST_OUT=$out CONSOLE_TEST_CHROMIUM=$chromium \
  NODE_PATH=$root/$tools/node_modules node --test --test-reporter=spec console/test/console.test.cjs || rc=$?

for entry in "${logs[@]}"; do
  name=${entry%%:*}
  log=${entry#*:}
  if [ "$rc" -ne 0 ]; then
    echo "--- last lines of the $name server's log" >&2
    tail -30 "$log" >&2
  fi
  if grep -n -i "panicked" "$log"; then
    echo "the $name server panicked (log: above)" >&2
    rc=1
  fi
done
[ "$rc" -eq 0 ] || { echo "console test failed" >&2; exit "$rc"; }
echo "screenshot: $out/console.png (and $out/console-dynamodb.png)"
echo "console test ok: both stores, $((SECONDS - start)) s"
