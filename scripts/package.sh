#!/usr/bin/env bash
# Release builds of every Lambda function of template.yaml with cargo-lambda (zig as the linker),
# zipped as Lambda wants them (bootstrap at the root of the zip), and their sizes.
#
#   bash scripts/package.sh                 arm64 (the template's architecture) when the Rust target
#                                           aarch64-unknown-linux-gnu is installed, else x86_64 (said loudly)
#   PACKAGE_ARCH=x86_64 bash scripts/package.sh
#   SAM_BUILD=1 bash scripts/package.sh     then also `sam build` (BuildMethod rust-cargolambda; slow)
#
# Zips: target/lambda/<arch>/<binary>/bootstrap.zip; summary: target/lambda/<arch>/sizes.md.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/lambda-tools.sh
source scripts/lambda-tools.sh

# The binaries, as the template names them (Metadata.BuildProperties.Binary).
# (each once: every route function runs the same binary, parkpay-routes)
mapfile -t bins < <(sed -n 's/^ *Binary: *\([A-Za-z0-9_-]*\) *$/\1/p' template.yaml | sort -u)
[ "${#bins[@]}" -gt 0 ] || { echo "no BuildProperties.Binary in template.yaml" >&2; exit 1; }

arch=${PACKAGE_ARCH:-arm64}
if [ "$arch" = arm64 ] && ! has_target aarch64-unknown-linux-gnu; then
  cat >&2 <<MSG
WARNING: the Rust target aarch64-unknown-linux-gnu is not installed, so no arm64 build here.
         Install it with: rustup target add aarch64-unknown-linux-gnu  (it may not be fetchable on
         every machine). Falling back to x86_64: these zips are for Architectures: [x86_64], not
         for template.yaml as it stands (arm64). Sizes are close; arm64 binaries are usually a
         little smaller.
MSG
  arch=x86_64
fi
case "$arch" in
  arm64) arch_flag=--arm64 ;;
  x86_64) arch_flag=--x86-64 ;;
  *) echo "PACKAGE_ARCH must be arm64 or x86_64" >&2; exit 2 ;;
esac

out=target/lambda/$arch
bin_args=()
for b in "${bins[@]}"; do bin_args+=(--bin "$b"); done
echo "cargo lambda build --release $arch_flag --output-format zip (${bins[*]})"
start=$(date +%s)
cargo lambda build --release "$arch_flag" --output-format zip --lambda-dir "$out" "${bin_args[@]}"
echo "built in $(( $(date +%s) - start )) s"

{
  echo "| function binary | arch | bootstrap.zip | under 4 MB |"
  echo "|---|---|---|---|"
  for b in "${bins[@]}"; do
    zip="$out/$b/bootstrap.zip"
    [ -f "$zip" ] || { echo "missing $zip" >&2; exit 1; }
    bytes=$(stat -c %s "$zip")
    mb=$(awk -v b="$bytes" 'BEGIN { printf "%.2f", b / 1048576 }')
    ok=$([ "$bytes" -lt $((4 * 1048576)) ] && echo yes || echo NO)
    echo "| $b | $arch | $mb MiB ($bytes bytes) | $ok |"
  done
} | tee "$out/sizes.md"

if [ "${SAM_BUILD:-0}" = "1" ]; then
  SAM_ARCH=$arch bash scripts/sam-build.sh
fi
