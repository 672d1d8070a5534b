#!/usr/bin/env bash
# Lint docs/openapi.yaml with Redocly's CLI (npm @redocly/cli, pinned; installed into
# .tools/redocly like scripts/dynamodb-local.sh installs its npm package). Rules: redocly.yaml
# (the `recommended` set; every rule changed there says why). Offline: no telemetry, no network.
#   bash scripts/lint-openapi.sh            install (idempotent), then lint
set -euo pipefail
cd "$(dirname "$0")/.."
dir=.tools/redocly
version=2.77.0

if [ ! -x "$dir/node_modules/.bin/redocly" ] || [ "$(cat "$dir/.version" 2>/dev/null)" != "$version" ]; then
  command -v npm >/dev/null || { echo "npm is needed to install @redocly/cli (apt-get install nodejs npm)" >&2; exit 1; }
  echo "installing @redocly/cli@$version into $dir" >&2
  rm -rf "$dir"
  mkdir -p "$dir"
  npm install --silent --no-audit --no-fund --prefix "$dir" "@redocly/cli@$version" >&2
  echo "$version" >"$dir/.version"
fi

export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true
"$dir/node_modules/.bin/redocly" lint --config redocly.yaml docs/openapi.yaml
