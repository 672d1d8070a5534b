#!/usr/bin/env bash
# Fails (exit 1) when a file of the repository points outside it: an absolute path into the
# machine's work folders, a document that lives elsewhere (the team's notes), or a relative path
# whose `../` climbs out of the repository. Everything the code, tests and docs need is written
# inside the repository, in its own words. Looks at every file git knows or would add (tracked
# and untracked, not ignored: so not target/ or .tools/), text only.
#   bash scripts/check-self-contained.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
self=scripts/check-self-contained.sh

# Words that name places outside the repository (case-insensitive, extended regex).
outside='/work/|/home/[a-z]|/root/|handbook|phonepe-api\.md|api-contract\.md'

hits=0
while IFS= read -r -d '' file; do
  [ "$file" = "$self" ] && continue
  [ -f "$file" ] || continue
  # Named places.
  if found=$(grep -n -I -i -E "$outside" -- "$file"); then
    while IFS= read -r line; do
      printf '%s:%s\n' "$file" "$line"
      hits=$((hits + 1))
    done <<<"$found"
  fi
  # Relative paths: each `../…` resolved from the file's own folder must stay inside.
  if rel=$(grep -n -o -I -E '(\.\./)+[A-Za-z0-9_.*-]*' -- "$file"); then
    dir=$(dirname -- "$file")
    while IFS= read -r match; do
      path=${match#*:}
      target=$(realpath -m -- "$root/$dir/$path")
      case "$target" in
        "$root" | "$root"/*) ;;
        *)
          printf '%s:%s: %s leaves the repository\n' "$file" "${match%%:*}" "$path"
          hits=$((hits + 1))
          ;;
      esac
    done <<<"$rel"
  fi
done < <(git ls-files -z --cached --others --exclude-standard)

if [ "$hits" -gt 0 ]; then
  echo "check-self-contained: $hits reference(s) to outside the repository (above); say it in the repository's own words instead" >&2
  exit 1
fi
echo "ok: no file points outside the repository"
