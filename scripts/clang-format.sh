#!/usr/bin/env bash
# Formatting of native/ is enforced, not debated: --check fails on any difference, --fix rewrites.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v clang-format >/dev/null; then
  echo "clang-format not found: run 'npm run setup' (installs it with apt)" >&2
  exit 1
fi
case "${1:---check}" in
  --check) clang-format --dry-run --Werror native/*.cc native/*.h ;;
  --fix) clang-format -i native/*.cc native/*.h ;;
  *) echo "usage: $0 --check|--fix" >&2; exit 2 ;;
esac
