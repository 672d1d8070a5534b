#!/usr/bin/env bash
# An independent check of the PhonePe simulator's PG v2: PhonePe's OFFICIAL Python SDK (PyPI
# phonepe-pg-sdk-python, pinned, in its own venv .tools/phonepe-sdk-venv) runs against the
# standalone simulator binary: OAuth token, pay, the hosted pay page, order status, refund,
# refund status, and the simulator's webhooks checked by the SDK's validate_callback. The
# simulator is started here on a free port with its own (non-default) client, merchant, webhook
# credentials and token lifetime, so the check also proves its environment is read. What it
# checks and what it found: docs/phonepe-sdk-check.md.
#
#   bash scripts/phonepe-sdk-check.sh                  install (idempotent), build, check
#   PARKPAY_SIMULATOR_BIN=path bash scripts/phonepe-sdk-check.sh   use that binary, no build
set -euo pipefail
# A relative PARKPAY_SIMULATOR_BIN is the caller's: resolved before leaving the caller's folder.
if [ -n "${PARKPAY_SIMULATOR_BIN:-}" ]; then
  PARKPAY_SIMULATOR_BIN=$(realpath -m -- "$PARKPAY_SIMULATOR_BIN")
fi
cd "$(dirname "$0")/.."
root=$PWD

venv=.tools/phonepe-sdk-venv
# Pinned, with every dependency, so a fresh machine installs exactly what was checked. Bump
# deliberately, re-run this check, and update docs/phonepe-sdk-check.md.
requirements=(
  "phonepe-pg-sdk-python==3.0.1"
  "APScheduler==3.11.2"
  "certifi==2026.10.19.post1"
  "charset-normalizer==3.5.3"
  "dataclasses-json==0.5.8"
  "idna==3.20"
  "marshmallow==3.26.2"
  "marshmallow-enum==1.5.1"
  "mypy_extensions==1.2.0"
  "packaging==26.4"
  "requests==2.31.0"
  "typing-inspect==0.9.0"
  "typing_extensions==4.16.0"
  "tzlocal==5.4.5"
  "urllib3==1.26.12"
)
stamp="$venv/.parkpay-requirements"
wanted=$(printf '%s\n' "${requirements[@]}")
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$wanted" ] || [ ! -x "$venv/bin/python3" ]; then
  command -v python3 >/dev/null \
    || { echo "python3 (3.9+, with the venv module) is needed for PhonePe's Python SDK" >&2; exit 1; }
  echo "installing ${requirements[0]} (and its pinned dependencies) into $venv" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/python3" -m pip install --quiet --disable-pip-version-check --no-deps "${requirements[@]}" >&2
  "$venv/bin/python3" -m pip check >&2 \
    || { echo "the pinned SDK dependencies do not fit together (pip check above)" >&2; exit 1; }
  printf '%s\n' "$wanted" >"$stamp"
fi

# The simulator: the given binary, or the workspace's debug build (a no-op when current).
if [ -n "${PARKPAY_SIMULATOR_BIN:-}" ]; then
  bin=$PARKPAY_SIMULATOR_BIN
else
  cargo build --quiet -p parkpay-simulator
  bin="${CARGO_TARGET_DIR:-$root/target}/debug/parkpay-simulator"
fi
[ -x "$bin" ] || { echo "no simulator binary at $bin" >&2; exit 1; }

work=$(mktemp -d)
sim_pid=
cleanup() {
  if [ -n "$sim_pid" ] && kill -0 "$sim_pid" 2>/dev/null; then
    kill "$sim_pid" 2>/dev/null || true
    wait "$sim_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# Chosen credentials, none of them the simulator's defaults.
client_id=SDKCHECKCLIENT
client_secret=sdk-check-client-secret
client_version=3
merchant_id=SDKCHECKMERCHANT
token_lifetime=1800
hook_user=sdk-check-webhook-user
hook_password=sdk-check-webhook-password
# The script's webhook receiver listens here (a free port now; the simulator takes its own).
hook_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
hook_url="http://127.0.0.1:$hook_port/phonepe/webhook"

# Only these variables: nothing from the caller's environment (a PHONEPE_SALT_KEYS, say) leaks
# in. Refunds stay CONFIRMED until the check settles them through the control API.
env -i PATH="$PATH" RUST_LOG=info \
  PARKPAY_SIM_ADDR=127.0.0.1:0 \
  PHONEPE_MERCHANT_ID="$merchant_id" \
  PHONEPE_CLIENT_ID="$client_id" \
  PHONEPE_CLIENT_SECRET="$client_secret" \
  PHONEPE_CLIENT_VERSION="$client_version" \
  PHONEPE_WEBHOOK_USERNAME="$hook_user" \
  PHONEPE_WEBHOOK_PASSWORD="$hook_password" \
  PHONEPE_WEBHOOK_URL="$hook_url" \
  PARKPAY_SIM_TOKEN_LIFETIME_S="$token_lifetime" \
  PARKPAY_SIM_REFUND_SETTLE_MS=600000 \
  "$bin" >"$work/sim.out" 2>"$work/sim.log" &
sim_pid=$!

# It prints "… listening on http://127.0.0.1:PORT/ …" once bound.
base=
for _ in $(seq 1 100); do
  base=$(grep -o -m1 'listening on http://[^ ]*' "$work/sim.out" 2>/dev/null | sed 's/^listening on //; s:/$::' || true)
  [ -n "$base" ] && break
  kill -0 "$sim_pid" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$base" ]; then
  cat "$work/sim.out" "$work/sim.log" >&2
  echo "the simulator ($bin) did not start (output above)" >&2
  exit 1
fi
echo "simulator at $base (client $client_id, merchant $merchant_id, webhooks to $hook_url)"

start=$SECONDS
if ! SDK_CHECK_SIM_URL="$base" SDK_CHECK_CLIENT_ID="$client_id" SDK_CHECK_CLIENT_SECRET="$client_secret" \
     SDK_CHECK_CLIENT_VERSION="$client_version" SDK_CHECK_MERCHANT_ID="$merchant_id" \
     SDK_CHECK_TOKEN_LIFETIME_S="$token_lifetime" SDK_CHECK_WEBHOOK_URL="$hook_url" \
     SDK_CHECK_WEBHOOK_USERNAME="$hook_user" SDK_CHECK_WEBHOOK_PASSWORD="$hook_password" \
     "$venv/bin/python3" scripts/phonepe_sdk_check.py; then
  echo "--- simulator log (last 40 lines)" >&2
  tail -40 "$work/sim.log" >&2
  echo "PhonePe's Python SDK check against the simulator FAILED (the first FAILED line above says which step)" >&2
  exit 1
fi
if grep -n -i "panicked" "$work/sim.log"; then
  echo "the simulator panicked during the check (log line above)" >&2
  exit 1
fi
echo "PhonePe SDK check passed in $((SECONDS - start)) s"
