# Schemathesis hooks for test/fuzz/api.test.ts (loaded via SCHEMATHESIS_HOOKS).
# Junk alone only exercises the first checks, so for a seeded share of generated requests that
# carry an Authorization header, it is replaced with a fresh, validly signed one-time token from the test's
# local mint (CREDBROKER_FUZZ_MINT), and a valid role name is sometimes replaced with the role the
# policy allows. Request bodies stay as generated otherwise (valid stays valid, invalid stays invalid).
import os
import random
import re
import urllib.request

import schemathesis

MINT = os.environ["CREDBROKER_FUZZ_MINT"]
ROLE = os.environ.get("CREDBROKER_FUZZ_ROLE", "deploy")
rng = random.Random(int(os.environ.get("CREDBROKER_FUZZ_SEED", "1")))
ROLE_RE = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")


def fresh_token() -> str:
    with urllib.request.urlopen(MINT, timeout=10) as res:
        return res.read().decode("ascii")


@schemathesis.hook
def before_call(context, case, kwargs):
    if case.operation.path != "/v1/credentials":
        return
    headers = dict(case.headers or {})
    # Only where a token is being sent at all: requests that test a *missing* header stay as they are.
    has_auth = any(k.lower() == "authorization" for k in headers)
    if has_auth and rng.random() < 0.6:
        headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
        headers["Authorization"] = "Bearer " + fresh_token()
        case.headers = headers
    body = case.body
    if isinstance(body, dict) and isinstance(body.get("role"), str) and ROLE_RE.match(body["role"]) and rng.random() < 0.5:
        case.body = {**body, "role": ROLE}
