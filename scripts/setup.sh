#!/usr/bin/env bash
# Idempotent set-up behind `npm install`, `npm test` and `npm run demo`: installs what is missing
# and says what it does; quick when nothing is missing.
#   setup.sh native   system libtorch (apt, when no libtorch is found) + the native addon
#   setup.sh all      the above + npm dependencies + the TypeScript build
# libtorch: LIBTORCH=<prefix>, or LIBTORCH_USE_PYTORCH=1 (python3's torch), else Debian's libtorch-dev.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-all}
say() { echo "[staged-lm setup] $*" >&2; }

apt_updated=0
apt_install() {
  local sudo=""
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null; then sudo="sudo"; else
      say "need root to run: apt-get install $*"; return 1
    fi
  fi
  if [ $apt_updated = 0 ]; then $sudo apt-get update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

ensure_system() {
  if [ -n "${LIBTORCH:-}" ] || [ "${LIBTORCH_USE_PYTORCH:-}" = 1 ]; then
    # a libtorch of the user's choosing: no apt (GPU hosts have no network); it must exist
    node scripts/libtorch.js --json >/dev/null
    return
  fi
  local want=()
  node scripts/libtorch.js --exists || want+=(libtorch-dev)
  # OpenBLAS: ~10x faster CPU matmuls than the reference BLAS libtorch-dev pulls in
  dpkg -s libopenblas0-pthread >/dev/null 2>&1 || want+=(libopenblas0-pthread)
  command -v ccache >/dev/null || want+=(ccache)
  command -v clang-format >/dev/null || want+=(clang-format)
  # Gloo's headers: data-parallel training on CPU (c10d's Gloo backend is in Debian's libtorch)
  dpkg -s libgloo-dev >/dev/null 2>&1 || want+=(libgloo-dev)
  if [ ${#want[@]} -gt 0 ]; then
    say "installing with apt: ${want[*]} (libtorch-dev is ~700 MB and takes about a minute)"
    apt_install "${want[@]}"
  fi
}

ensure_node_modules() {
  if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    say "installing npm dependencies (npm ci; builds the native addon)"
    npm ci --no-audit --no-fund
  fi
}

build_native() {
  local prefix stamp=build/.libtorch-prefix
  prefix=$(node scripts/libtorch.js --prefix)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" != "$prefix" ]; then
    say "libtorch changed ($(cat "$stamp") -> $prefix): reconfiguring the native build"
    rm -rf build
  fi
  if [ ! -f build/Release/staged_lm.node ]; then
    say "building the native addon against libtorch at $prefix (cmake-js; ~1-2 min the first time)"
  fi
  local log
  log=$(mktemp)
  if ! npx --no-install cmake-js build --out build >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    say "native build failed (output above)"
    exit 1
  fi
  rm -f "$log"
  mkdir -p build && echo "$prefix" >"$stamp"
}

build_ts() {
  npx --no-install tsc -p tsconfig.build.json
}

case "$mode" in
  native)
    ensure_system
    build_native
    ;;
  all)
    ensure_system
    ensure_node_modules
    build_native
    build_ts
    ;;
  *)
    say "usage: setup.sh native|all"
    exit 2
    ;;
esac
