#!/usr/bin/env bash
# Runs the README's curl walkthrough, exactly as written between the walkthrough markers, against
# a freshly started local server (own port and data dir), and checks where it ends up.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${CARGO_TARGET_DIR:-target}/debug/parkpay-local"
[ -x "$bin" ] || cargo build -q -p parkpay-local
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
data=$(mktemp -d)
PARKPAY_ADDR=127.0.0.1:$port PARKPAY_DATA_DIR=$data "$bin" >"$data/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; rm -rf "$data"' EXIT
for _ in $(seq 1 100); do
  (echo >/dev/tcp/127.0.0.1/$port) 2>/dev/null && break
  sleep 0.1
done
block=$(awk '/<!-- walkthrough:start -->/{on=1; next} /<!-- walkthrough:end -->/{on=0} on' README.md | sed '/^```/d')
block=${block//127.0.0.1:3000/127.0.0.1:$port}
out=$(bash -euo pipefail -c "$block" 2>&1) || { echo "$out"; cat "$data/server.log"; echo "walkthrough failed" >&2; exit 1; }
echo "$out" | sed 's/^/  | /'
last=$(echo "$out" | tail -1)
if [ "$last" != "PARTIALLY_REFUNDED" ]; then
  echo "walkthrough ended with '$last', expected PARTIALLY_REFUNDED" >&2
  exit 1
fi
echo "walkthrough ok"
