#!/usr/bin/env bash
# The container image, built and run the way an operator would, on this machine and over loopback
# only. .ci/run calls it; it is skipped, with a message saying why, only where podman cannot be
# installed.
#   bash test/container/smoke.sh
# 1. podman (installed with apt-get if missing) and the two local base images (base-images.sh);
# 2. `podman build` of the Dockerfile at the repository root, with those images as build arguments;
# 3. test/container/smoke.ts: runs the image with a read-only root filesystem and a dev config, waits
#    for /readyz, gets real credentials from it with the Node client against moto, checks the user,
#    the filesystem and the image's contents, then stops it with SIGTERM.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
. test/container/podman-env.sh
status=0
podman_ready || status=$?
case $status in
  0) ;;
  1) exit 0 ;; # skipped, and said why
  *) exit 1 ;;
esac
state="$CREDBROKER_CONTAINER_STATE"
image=${CREDBROKER_IMAGE:-localhost/credbroker:ci}

started=$SECONDS
images=$(bash test/container/base-images.sh) || { echo "container smoke: the base images could not be made"; exit 1; }
eval "$images"
echo "--- base images ready in $((SECONDS - started)) s: $BASE_IMAGE, $BUILD_IMAGE"

# The host's npm cache serves the build stage's `npm ci` (same lockfile, already downloaded).
started=$SECONDS
if ! podman build --format docker --network host \
  -v "$(npm config get cache):/root/.npm" \
  --build-arg BASE_IMAGE="$BASE_IMAGE" --build-arg BUILD_IMAGE="$BUILD_IMAGE" \
  -t "$image" . >"$state/build.log" 2>&1; then
  tail -n 60 "$state/build.log"
  echo "container smoke: podman build failed (full log: $state/build.log)"
  exit 1
fi
echo "--- built $image in $((SECONDS - started)) s"
# Build-stage layers stay cached for the next run; older leftovers go.
podman image prune -f --filter until=72h >/dev/null 2>&1 || true

bash scripts/ensure-venv.sh
AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true exec node --import tsx test/container/smoke.ts "$image"
