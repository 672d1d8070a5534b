# Sourced by scripts/package.sh and scripts/sam-build.sh (from the repository root): the pinned
# serverless tools on PATH (scripts/python-tools.sh), settings that keep SAM CLI and the AWS SDK
# offline, and `has_target` (is a Rust target installed?).

bash scripts/python-tools.sh
export PATH="$PWD/.tools/venv/bin:$PATH"
export SAM_CLI_TELEMETRY=0 AWS_EC2_METADATA_DISABLED=true
export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-parkpaylocal} AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-parkpaylocal}
export AWS_REGION=${AWS_REGION:-ap-south-1} AWS_DEFAULT_REGION=${AWS_DEFAULT_REGION:-${AWS_REGION:-ap-south-1}}

has_target() {
  if command -v rustup >/dev/null 2>&1; then
    rustup target list --installed 2>/dev/null | grep -qx "$1"
  else
    [ -d "$(rustc --print sysroot)/lib/rustlib/$1" ]
  fi
}
