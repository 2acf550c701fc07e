#!/usr/bin/env bash
# Proves binding.gyp builds the same addon as CMakeLists.txt, without touching cmake-js's build/:
# copies binding.gyp, native/, scripts/ and package.json into a temporary directory (node_modules linked),
# runs `node-gyp rebuild` there offline (headers from --nodedir, /usr by default), loads the .node with a
# plain require(), checks zeros + add read back through toTypedArray, and removes the directory.
# Prints one line: success, or failure (with the build log's tail) and a non-zero exit.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
say() { echo "[staged-lm gyp] $*" >&2; }
fail() { say "FAIL: $*"; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/staged-lm-gyp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
say "copying binding.gyp, native/, scripts/, package.json to $tmp (node_modules linked)"
cp -r "$root/binding.gyp" "$root/native" "$root/scripts" "$root/package.json" "$tmp/"
ln -s "$root/node_modules" "$tmp/node_modules"

gyp="$root/node_modules/.bin/node-gyp"
[ -x "$gyp" ] || fail "no node-gyp in node_modules (npm install; it is a devDependency)"
if command -v ccache >/dev/null; then
  # paths relative to the temp dir, so a rerun from a fresh directory hits the cache
  export CXX="ccache g++" CCACHE_BASEDIR="$tmp" CCACHE_NOHASHDIR=1
fi
say "node-gyp rebuild -j 2 (nodedir ${npm_config_nodedir:-/usr}, CXX=${CXX:-default}, libtorch: $(node "$root/scripts/libtorch.js" --source))"
start=$SECONDS
if ! (cd "$tmp" && "$gyp" rebuild -j 2 --nodedir="${npm_config_nodedir:-/usr}") >"$tmp/build.log" 2>&1; then
  tail -n 40 "$tmp/build.log" >&2
  fail "node-gyp rebuild failed after $((SECONDS - start)) s (log tail above)"
fi
built=$((SECONDS - start))

addon="$tmp/build/Release/staged_lm.node"
say "loading $addon with require() and checking zeros + add"
ADDON="$addon" node -e '
  const t = require(process.env.ADDON);
  const info = t.buildInfo();
  const a = t.zeros([2, 3], "float32", "cpu");
  const b = t.fromTypedArray(new Float32Array([1, 2, 3, 4, 5, 6]), [2, 3], "float32", "cpu");
  const got = Array.from(t.toTypedArray(t.add(t.add(a, b), 0.5)));
  const want = [1.5, 2.5, 3.5, 4.5, 5.5, 6.5];
  if (JSON.stringify(got) !== JSON.stringify(want)) throw new Error(`zeros + x + 0.5 gave ${got}, want ${want}`);
  if (info.buildType !== "Release") throw new Error(`buildType ${info.buildType}, want Release`);
  console.error(`[staged-lm gyp] torch ${info.torchVersion} (${info.libtorchSource}, ${info.libtorchPrefix}), cuda build ${info.cudaBuild}`);
' || fail "the node-gyp addon loads or computes wrongly"
say "OK: binding.gyp builds staged_lm.node (node-gyp ${built} s) and it computes zeros + add correctly"
