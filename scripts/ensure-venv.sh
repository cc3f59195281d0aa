#!/usr/bin/env bash
# Creates (once) the project's Python venv for the local stand-ins: moto server (AWS STS/IAM) and
# the AWS CLI, which dev mode (`npm start`) and the tests use, plus schemathesis for the tests.
#   bash scripts/ensure-venv.sh [REQUIREMENTS]   (default: the tests' set, a superset of dev mode's)
# Idempotent: a stamp file records the requirement set installed; a changed set installs again.
# Where: $CREDBROKER_VENV (or $CREDBROKER_TEST_VENV), default .venv at the repository root.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv="${CREDBROKER_VENV:-${CREDBROKER_TEST_VENV:-$root/.venv}}"
reqs="${1:-$root/test/support/requirements-test.txt}"
stamp="$venv/.credbroker-stamp"
dev="$root/scripts/requirements-dev.txt"
hash_of() { cat "$1" "$dev" | sha256sum | cut -d' ' -f1; }
want=$(hash_of "$reqs")
# A venv that has everything this set asks for (same set, or the tests' superset) is enough.
if [ -x "$venv/bin/moto_server" ] && [ -f "$stamp" ] && grep -qx "$want" "$stamp"; then
  exit 0
fi
command -v python3 >/dev/null 2>&1 || { echo "ensure-venv: python3 not found (install Python 3.9+ with venv)" >&2; exit 3; }
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
# (This machine's pip config lists local mirror folders that may be absent: drop those warnings.)
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$reqs" \
  2> >(grep -v 'is neither a file nor a directory' >&2)
# Every set includes dev mode's (the tests' file pulls it in with -r): record both.
printf '%s\n%s\n' "$want" "$(hash_of "$dev")" >> "$stamp"
