#!/usr/bin/env bash
# Runs the README's curl walkthrough, exactly as written between the walkthrough markers, against
# a freshly started local server (own port and data dir), and checks where it ends up.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/fresh-local-server.sh
source scripts/fresh-local-server.sh
block=$(awk '/<!-- walkthrough:start -->/{on=1; next} /<!-- walkthrough:end -->/{on=0} on' README.md | sed '/^```/d')
block=${block//127.0.0.1:3000/127.0.0.1:$port}
out=$(bash -euo pipefail -c "$block" 2>&1) || { echo "$out"; cat "$data/server.log"; echo "walkthrough failed" >&2; exit 1; }
echo "$out" | sed 's/^/  | /'
last=$(echo "$out" | tail -1)
if [ "$last" != "PARTIALLY_REFUNDED" ]; then
  echo "walkthrough ended with '$last', expected PARTIALLY_REFUNDED" >&2
  exit 1
fi
echo "walkthrough ok"
