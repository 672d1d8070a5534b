#!/usr/bin/env bash
# Cold-start benchmark: every function of template.yaml, release-built and zipped with cargo-lambda
# for this machine's architecture (the same build as scripts/package.sh), started RUNS times (fresh process, fresh Lambda Runtime API stand-in,
# fresh DynamoDB Local table and PhonePe simulator each time), next to the bare hello-world
# lambda_runtime floor (shared/lambda-harness/src/bin/hello-lambda.rs) measured in the same run.
#
#   bash scripts/coldstart.sh                 20 starts each, 5 warm invokes per start
#   RUNS=50 WARM=10 bash scripts/coldstart.sh
#   ONLY=list-lots,hello-lambda bash scripts/coldstart.sh
#   REUSE_ZIPS=1 bash scripts/coldstart.sh   measure the zips scripts/package.sh made, without rebuilding
#   EXTRA_ENV='SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' bash scripts/coldstart.sh   what-if: extra variables
#
# Uses PARKPAY_DYNAMODB_ENDPOINT when set; otherwise starts its own DynamoDB Local (in memory)
# and stops it afterwards. Prints a Markdown table (also written to target/lambda/bench/coldstart.md).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

bash scripts/python-tools.sh
export PATH="$root/.tools/venv/bin:$PATH"
export AWS_EC2_METADATA_DISABLED=true

case "$(uname -m)" in
  x86_64) flag=--x86-64 ;;
  aarch64 | arm64) flag=--arm64 ;;
  *) echo "unsupported machine $(uname -m)" >&2; exit 1 ;;
esac

# (each once: every route function runs the same binary, parkpay-routes)
mapfile -t bins < <(sed -n 's/^ *Binary: *\([A-Za-z0-9_-]*\) *$/\1/p' template.yaml | sort -u)
arch=${flag#--}; arch=${arch/x86-64/x86_64}
# 1. The functions exactly as scripts/package.sh packages them (the same command, so nothing is
#    rebuilt when it has run): the bench runs the bootstrap inside each zip.
bin_args=()
for b in "${bins[@]}"; do bin_args+=(--bin "$b"); done
if [ "${REUSE_ZIPS:-0}" = "1" ]; then
  echo "REUSE_ZIPS=1: measuring the zips already in target/lambda/$arch (not rebuilt)" >&2
else
  echo "cargo lambda build --release $flag --output-format zip (${bins[*]})" >&2
  cargo lambda build --release "$flag" --output-format zip --lambda-dir "target/lambda/$arch" "${bin_args[@]}" >&2
fi
bin_dir=target/lambda/bench/bin
rm -rf "$bin_dir"; mkdir -p "$bin_dir"
for b in "${bins[@]}"; do
  python3 -c 'import sys, zipfile; open(sys.argv[2], "wb").write(zipfile.ZipFile(sys.argv[1]).read("bootstrap"))' \
    "target/lambda/$arch/$b/bootstrap.zip" "$bin_dir/$b"
  chmod +x "$bin_dir/$b"
done
# 2. The floor and the benchmark driver (shared/lambda-harness), release too.
echo "cargo lambda build --release $flag (hello-lambda coldstart)" >&2
cargo lambda build --release "$flag" --lambda-dir target/lambda/bench/harness --bin hello-lambda --bin coldstart >&2
cp target/lambda/bench/harness/hello-lambda/bootstrap "$bin_dir/hello-lambda"
driver=target/lambda/bench/harness/coldstart/bootstrap

if [ -z "${PARKPAY_DYNAMODB_ENDPOINT:-}" ]; then
  source scripts/own-dynamodb-local.sh
  own_dynamodb_local target/lambda/bench/dynamodb-local.log 512m
fi

args=(--bin-dir "$bin_dir" --runs "${RUNS:-20}" --warm "${WARM:-5}")
[ -n "${ONLY:-}" ] && args+=(--only "$ONLY")
for kv in ${EXTRA_ENV:-}; do args+=(--env "$kv"); done
echo "$(nproc) cores, $(uname -m), $(date -u +%Y-%m-%dT%H:%MZ); $driver ${args[*]}" >&2
"$driver" "${args[@]}" | tee target/lambda/bench/coldstart.md
