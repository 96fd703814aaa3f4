#!/usr/bin/env bash
# Runs the whole test suite on the current LTS Node.js (24) besides the
# Node.js that runs npm. Usage: npm run test:lts [-- filter...]
#
# - Node.js comes from the npm registry as the node-linux-<arch> package, which
#   ships the binary and its headers (include/node). It is installed once into
#   .lts/node-v<version>/ (gitignored) and reused while that version stays.
# - The addon is built offline against those headers (node-gyp --nodedir) in a
#   copy of the tree, .lts/tree, so ./build (the addon for the Node.js that
#   runs npm) is left as it is. node_modules is linked, not copied: its
#   packages are JavaScript or ship Node-API builds, which load on any Node.js.
# - The tests run with that Node.js first on PATH, so child processes started
#   with process.execPath or `node` use it too.
#
# Environment: MULTIPROC_LTS_VERSION picks another exact version (default
# below); MULTIPROC_LTS_TIMEOUT bounds the test run in seconds (default 1800).
set -euo pipefail

version="${MULTIPROC_LTS_VERSION:-24.21.0}"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="$root/.lts"
tree="$cache/tree"

case "$(uname -m)" in
  x86_64) arch=x64 ;;
  aarch64) arch=arm64 ;;
  *) echo "test:lts: no Node.js package for $(uname -m)" >&2; exit 1 ;;
esac
pkg="node-linux-$arch"

if [[ ! -d "$root/node_modules/typescript" ]]; then
  echo "test:lts: run \`npm install\` first (node_modules/typescript is missing)" >&2
  exit 1
fi

mkdir -p "$cache"
# One run at a time per checkout: the copy of the tree is shared.
exec 9>"$cache/.lock"
flock 9

# 1. Node.js <version>, binary and headers.
nodedir="$cache/node-v$version/node_modules/$pkg"
if [[ "$("$nodedir/bin/node" -v 2>/dev/null || true)" != "v$version" ]]; then
  echo "test:lts: installing $pkg@$version into .lts/node-v$version"
  tmp="$cache/node-v$version.tmp"
  rm -rf "$tmp" "$cache/node-v$version"
  npm install --prefix "$tmp" --no-save --no-package-lock --no-audit --no-fund \
    --loglevel=error "$pkg@$version"
  mv "$tmp" "$cache/node-v$version"
fi
[[ -f "$nodedir/include/node/node.h" ]] || {
  echo "test:lts: $pkg@$version has no include/node headers" >&2
  exit 1
}
nodebin="$nodedir/bin"

# 2. A copy of the sources: tracked and new (not ignored) files as they are in
# the work tree; outside git, everything but generated folders.
mkdir -p "$tree"
find "$tree" -mindepth 1 -maxdepth 1 ! -name build ! -name node_modules -exec rm -rf {} +
list_sources() {
  if git -C "$root" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git -C "$root" ls-files -z --cached --others --exclude-standard
  else
    (cd "$root" && find . \( -name node_modules -o -name build -o -name dist -o -name .lts -o -name .git \) -prune \
      -o -type f -printf '%P\0')
  fi
}
list_sources | while IFS= read -r -d '' f; do
  case "$f" in .lts/* | node_modules/* | build/* | dist/*) continue ;; esac
  if [[ -f "$root/$f" ]]; then printf '%s\0' "$f"; fi
done | tar -C "$root" --null -T - -cf - | tar -C "$tree" -xf -
ln -sfn ../../node_modules "$tree/node_modules"

# 3. Build everything with Node.js <version>, offline, in the copy.
export PATH="$nodebin:$PATH"
export npm_config_nodedir="$nodedir"
unset MULTIPROC_ADDON
node_gyp="${npm_config_node_gyp:-}"
if [[ -z "$node_gyp" || ! -f "$node_gyp" ]]; then
  npm_cli="$(readlink -f "$(command -v npm)")"
  node_gyp="$(dirname "$npm_cli")/../node_modules/node-gyp/bin/node-gyp.js"
fi
cd "$tree"
echo "test:lts: building the addon against Node.js $(node -v) headers"
node "$node_gyp" rebuild --nodedir="$nodedir" --jobs=max --loglevel=warn
node -e 'require("./build/Release/multiproc.node")'
node node_modules/typescript/bin/tsc -p tsconfig.json

# 4. The same test runner as `npm test`. Unlike Node.js 20, Node.js 24's
# runner does not end a test file whose process stays alive after a test timed
# out, so the whole run is bounded (MULTIPROC_LTS_TIMEOUT seconds).
echo "test:lts: running the tests on Node.js $(node -v)"
limit="${MULTIPROC_LTS_TIMEOUT:-1800}"
status=0
timeout --kill-after=30 "$limit" node scripts/test.mjs "$@" || status=$?
if ((status == 124 || status == 137)); then
  echo "test:lts: the tests did not finish within ${limit}s" >&2
fi
exit "$status"
