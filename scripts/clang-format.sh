#!/usr/bin/env bash
# Formatting of native/ (and test/kernels/) is enforced, not debated: --check fails on any difference, --fix rewrites.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v clang-format >/dev/null; then
  echo "clang-format not found: run 'npm run setup' (installs it with apt)" >&2
  exit 1
fi
# the addon, our CUDA kernels, and the CPU harness that runs them in the tests
files=(native/*.cc native/*.h native/kernels/*.cu native/kernels/*.cuh native/kernels/*.h test/kernels/*.cc test/kernels/*.h)
case "${1:---check}" in
  --check) clang-format --dry-run --Werror "${files[@]}" ;;
  --fix) clang-format -i "${files[@]}" ;;
  *) echo "usage: $0 --check|--fix" >&2; exit 2 ;;
esac
