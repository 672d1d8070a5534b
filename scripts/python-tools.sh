#!/usr/bin/env bash
# The Python-packaged tools of the serverless build, in ONE venv (.tools/venv, ignored by git):
# AWS SAM CLI, cfn-lint, cargo-lambda (its binary ships on PyPI) and ziglang (cargo-lambda's
# cross linker). One venv on purpose: cargo-lambda finds zig by running `python3 -m ziglang` with
# the first python3 on PATH, so `sam build` (which runs cargo-lambda) must see this venv's python3.
#
#   bash scripts/python-tools.sh          install (idempotent; about 65 s cold, instant when current)
#   bash scripts/python-tools.sh --path   install, then print the venv's bin directory
#
# Use the tools with the venv's bin first on PATH:
#   export PATH="$PWD/.tools/venv/bin:$PATH"
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.tools/venv
# Pinned: bump deliberately (and re-run the template lint, sam build and the packaging step).
requirements=(
  "aws-sam-cli==1.170.0"
  "cfn-lint==1.58.0"
  "cargo-lambda==1.9.2"
  "ziglang==0.15.2"
)
stamp="$venv/.parkpay-requirements"
wanted=$(printf '%s\n' "${requirements[@]}")

if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$wanted" ] || [ ! -x "$venv/bin/sam" ] \
   || [ ! -x "$venv/bin/cfn-lint" ] || [ ! -x "$venv/bin/cargo-lambda" ]; then
  command -v python3 >/dev/null || { echo "python3 (3.9+, with the venv module) is needed for SAM CLI and cfn-lint" >&2; exit 1; }
  echo "installing ${requirements[*]} into $venv" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/python3" -m pip install --quiet --disable-pip-version-check --upgrade pip >&2
  "$venv/bin/python3" -m pip install --quiet --disable-pip-version-check "${requirements[@]}" >&2
  printf '%s\n' "$wanted" >"$stamp"
fi

if [ "${1:-}" = "--path" ]; then
  echo "$PWD/$venv/bin"
fi
