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

export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-parkpaylocal} AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-parkpaylocal}
export AWS_REGION=${AWS_REGION:-ap-south-1} AWS_EC2_METADATA_DISABLED=true
export PARKPAY_SOAK_PAYMENTS=${PARKPAY_SOAK_PAYMENTS:-2000} PARKPAY_SOAK_REFUNDS=${PARKPAY_SOAK_REFUNDS:-500}
export RUST_LOG=${RUST_LOG:-off}

stores=${PARKPAY_SOAK_STORES:-embedded,dynamodb}
if [[ ",$stores," == *",dynamodb,"* ]] && [ -z "${PARKPAY_DYNAMODB_ENDPOINT:-}" ]; then
  source scripts/own-dynamodb-local.sh
  own_dynamodb_local target/soak-dynamodb-local.log 1g
fi

echo "$(nproc) cores, $(uname -m), $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1), $(date -u +%Y-%m-%dT%H:%MZ)" >&2
echo "cargo test --release -p parkpay-local --test soak (${PARKPAY_SOAK_PAYMENTS} payments, ${PARKPAY_SOAK_REFUNDS} refunds, stores: $stores)" >&2
mkdir -p target
cargo test --release -p parkpay-local --test soak -- --nocapture 2>&1 | tee target/soak.log
# The table, from the run's log.
sed -n '/^Soak, seed/,/^test soak/p' target/soak.log | grep -v '^test soak' >target/soak.md || true
