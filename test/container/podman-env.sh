# Sourced by the container scripts: makes sure podman can run here, or says why it cannot.
#   . test/container/podman-env.sh   then   podman_ready || exit 0
# Installs podman and runc with apt-get when they are missing and we are root, and points podman at
# a containers.conf that works on this kind of machine (CI runners, VMs with hybrid cgroups):
# runc (crun fails on hybrid cgroups), cgroupfs (no systemd), a file events log, and ulimits no
# higher than this shell's own (podman's defaults fail with "setrlimit: Operation not permitted").
# Everything it writes goes under $CREDBROKER_CONTAINER_STATE (default /var/tmp/credbroker-container).

CREDBROKER_CONTAINER_STATE=${CREDBROKER_CONTAINER_STATE:-/var/tmp/credbroker-container}
export CREDBROKER_CONTAINER_STATE

# Prints why podman cannot be used and returns 1, or sets it up and returns 0.
podman_ready() {
  if ! command -v podman >/dev/null 2>&1 || ! command -v runc >/dev/null 2>&1; then
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
      echo "SKIP: podman is not installed and cannot be installed here (needs root and apt-get)"
      return 1
    fi
    echo "--- installing podman and runc (apt-get)"
    if ! { DEBIAN_FRONTEND=noninteractive apt-get install -y -q podman runc >/dev/null 2>&1 ||
      { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q podman runc >/dev/null 2>&1; }; }; then
      echo "SKIP: podman could not be installed with apt-get (no package source reachable?)"
      return 1
    fi
  fi
  mkdir -p "$CREDBROKER_CONTAINER_STATE"
  local hard
  hard=$(ulimit -Hn)
  cat >"$CREDBROKER_CONTAINER_STATE/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=$hard:$hard", "nproc=32768:32768"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
  export CONTAINERS_CONF="$CREDBROKER_CONTAINER_STATE/containers.conf"
  if ! podman info >/dev/null 2>&1; then
    echo "podman is installed but does not work here:" >&2
    podman info >&2 || true
    return 2
  fi
  return 0
}
