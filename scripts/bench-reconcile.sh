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

export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-parkpaylocal} AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-parkpaylocal}
export AWS_REGION=${AWS_REGION:-ap-south-1} AWS_EC2_METADATA_DISABLED=true
export RUST_LOG=${RUST_LOG:-off}

if [ -z "${PARKPAY_DYNAMODB_ENDPOINT:-}" ]; then
  source scripts/own-dynamodb-local.sh
  own_dynamodb_local target/bench-dynamodb-local.log 1g
fi

echo "$(nproc) cores, $(uname -m), $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1), $(date -u +%Y-%m-%dT%H:%MZ)" >&2
# The release profile, as scripts/soak.sh builds (one build for both); `--bench` selects the
# full size (what `cargo bench -p parkpay-local --bench reconcile_tick` does too).
echo "cargo test --release -p parkpay-local --bench reconcile_tick -- --bench" >&2
mkdir -p target
cargo test --release -p parkpay-local --bench reconcile_tick -- --bench | tee target/bench-reconcile.md
