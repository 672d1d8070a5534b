# Sourced (from the repository root) by scripts that need a local server of their own: starts the
# debug build of parkpay-local (built if missing) on a free port with an empty data directory,
# waits until it listens, and stops it and removes the directory when the script exits.
# Sets: port, data (its data directory; the server's log is $data/server.log), server (pid), base.
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
base=http://127.0.0.1:$port
