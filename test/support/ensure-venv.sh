#!/usr/bin/env bash
# Creates (once) the Python venv that holds the test stand-ins: moto server (AWS STS/IAM),
# the AWS CLI (to prove client output works with a real AWS tool) and schemathesis (API fuzzing).
# Idempotent: a stamp file records the requirement set; a changed set rebuilds the venv.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv="${CREDBROKER_TEST_VENV:-$here/../../.venv-test}"
reqs="$here/requirements-test.txt"
stamp="$venv/.credbroker-stamp"
want=$(sha256sum "$reqs" | cut -d' ' -f1)
if [ -x "$venv/bin/moto_server" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
python3 -m venv "$venv"
# (This machine's pip config lists local mirror folders that may be absent: drop those warnings.)
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$reqs" \
  2> >(grep -v 'is neither a file nor a directory' >&2)
echo "$want" > "$stamp"
