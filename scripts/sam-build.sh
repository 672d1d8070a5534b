#!/usr/bin/env bash
# `sam build` of every function of template.yaml, timed, with the size of what it built.
#
#   bash scripts/sam-build.sh        arm64 (the template as it is) when the Rust target
#                                    aarch64-unknown-linux-gnu is installed, else an x86_64 copy
#   SAM_ARCH=x86_64 bash scripts/sam-build.sh
#
# On a machine without the arm64 target the copy .aws-sam/template.x86_64.yaml (Architectures:
# [x86_64], CodeUri = this checkout's absolute path) is built instead; git ignores .aws-sam/.
# Every route function runs the same binary (parkpay-routes), so SAM groups them into one build
# definition and links that binary once; reconcile-payments is the second build.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

# shellcheck source=scripts/lambda-tools.sh
source scripts/lambda-tools.sh

arch=${SAM_ARCH:-arm64}
if [ "$arch" = arm64 ] && ! has_target aarch64-unknown-linux-gnu; then
  echo "WARNING: no Rust target aarch64-unknown-linux-gnu here: building an x86_64 copy of template.yaml" >&2
  arch=x86_64
fi
template=template.yaml
if [ "$arch" != arm64 ]; then
  mkdir -p .aws-sam
  template=.aws-sam/template.$arch.yaml
  sed -e "s/Architectures: \[arm64\]/Architectures: [$arch]/" -e "s#^\( *\)CodeUri: \.\$#\1CodeUri: $root#" \
    template.yaml >"$template"
fi
echo "sam build --template-file $template --build-dir .aws-sam/build"
start=$(date +%s)
sam build --template-file "$template" --build-dir .aws-sam/build
took=$(( $(date +%s) - start ))
echo
echo "| function | bootstrap | zipped |"
echo "|---|---|---|"
for f in .aws-sam/build/*/bootstrap; do
  fn=$(basename "$(dirname "$f")")
  zipped=$(python3 -c 'import io, sys, zipfile
b = io.BytesIO()
with zipfile.ZipFile(b, "w", zipfile.ZIP_DEFLATED) as z: z.write(sys.argv[1], "bootstrap")
print(len(b.getvalue()))' "$f")
  echo "| $fn | $(stat -c %s "$f") bytes | $zipped bytes |"
done
echo
echo "sam build took $took s ($arch)"
