#!/bin/sh
# credbroker-client.sh: the POSIX sh + curl variant of credbroker-client, for images without Node.
# Gets this CI job's OIDC token, exchanges it at a credbroker (format=env) and prints
#   export AWS_ACCESS_KEY_ID='…' … lines for:   eval "$(sh credbroker-client.sh --role deploy)"
# Secrets go only to stdout (or --output FILE, mode 0600); stderr gets one secret-free line.
# Tokens reach curl through its stdin config (-K -), never through argv (visible in `ps`).
# Exit codes: 0 ok, 2 usage, 3 token acquisition, 4 token rejected (401), 5 denied (403),
#             6 broker unavailable, 7 request rejected, 8 output file, 1 internal.

# A traced shell (sh -x, Jenkins' `sh -xe`, GitLab's CI_DEBUG_TRACE) would print every token and
# credential this script handles into the CI log: tracing is off for the whole body, silently.
{ set +xv; } 2>/dev/null
set -u
umask 077
LC_ALL=C
export LC_ALL

PROG=credbroker-client.sh
VERSION=0.1.0

die() { # die CODE MESSAGE: one clean line on stderr, then exit
  code=$1
  shift
  msg=$(printf '%s' "$*" | tr '\r\n\t' '   ' | sed 's/eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*/[redacted-jwt]/g' | cut -c1-600)
  printf '%s: error: %s\n' "$PROG" "$msg" >&2
  exit "$code"
}
debug() { [ "$verbose" = 1 ] && printf '%s: debug: %s\n' "$PROG" "$*" >&2; return 0; }

usage() {
  cat <<'EOF'
Usage: credbroker-client.sh --url URL --role NAME [options]     (POSIX sh + curl)

  --url URL                 broker base URL (https; http only for loopback)   CREDBROKER_URL
  --role NAME               role to assume                                     CREDBROKER_ROLE
  --duration SECONDS        900..43200                                         CREDBROKER_DURATION
  --audience AUD            OIDC audience to request (default: the broker URL) CREDBROKER_AUDIENCE
  --region REGION           also export AWS_REGION and AWS_DEFAULT_REGION      CREDBROKER_REGION
  --provider NAME           github|gitlab|circleci|buildkite|bitbucket|jenkins|azure|terraform|generic
                            (default: detected)                                CREDBROKER_PROVIDER
  --token-env NAME          read the token from this variable                  CREDBROKER_TOKEN_ENV
  --token-file PATH         read the token from this file                      CREDBROKER_TOKEN_FILE
  --azure-service-connection-id ID                  CREDBROKER_AZURE_SERVICE_CONNECTION_ID
  --format env|profile      env (default): export lines on stdout;             CREDBROKER_FORMAT
                            profile: a section in an AWS credentials file, for AWS_PROFILE
  --output FILE             env: write FILE (mode 0600) instead of stdout      CREDBROKER_OUTPUT
  --profile NAME            profile name for --format profile (default credbroker) CREDBROKER_PROFILE
  --credentials-file PATH   for --format profile (default $AWS_SHARED_CREDENTIALS_FILE
                            or ~/.aws/credentials)                             CREDBROKER_CREDENTIALS_FILE
  --timeout SECONDS         per request (default 15)                           CREDBROKER_TIMEOUT
  --retries N               on network errors, 429, 5xx (default 4)            CREDBROKER_RETRIES
  --ca-file FILE            PEM CA certificate(s) to trust for the broker (instead of the
                            system's), for a broker with a private CA          CREDBROKER_CA_FILE
  -v, --verbose             diagnostics on stderr (never secrets)
  -h, --help | --version

Proxy (as curl): HTTPS_PROXY for https:// URLs, HTTP_PROXY for http:// ones (lower case first),
  NO_PROXY: hosts (and their subdomains), IP addresses, CIDRs, or *; for the token endpoint and the
  broker alike; -v says which proxy each origin went through, never its credentials

Exit codes: 0 ok, 1 internal, 2 usage, 3 token acquisition, 4 token rejected (401), 5 denied (403),
6 broker unavailable, 7 request rejected, 8 output file not written.
EOF
}

url=${CREDBROKER_URL:-}
role=${CREDBROKER_ROLE:-}
duration=${CREDBROKER_DURATION:-}
audience=${CREDBROKER_AUDIENCE:-}
region=${CREDBROKER_REGION:-}
provider=${CREDBROKER_PROVIDER:-}
token_env=${CREDBROKER_TOKEN_ENV:-}
token_file=${CREDBROKER_TOKEN_FILE:-}
azure_sc=${CREDBROKER_AZURE_SERVICE_CONNECTION_ID:-${AZURESUBSCRIPTION_SERVICE_CONNECTION_ID:-}}
format=${CREDBROKER_FORMAT:-env}
output=${CREDBROKER_OUTPUT:-}
profile=${CREDBROKER_PROFILE:-credbroker}
credentials_file=${CREDBROKER_CREDENTIALS_FILE:-${AWS_SHARED_CREDENTIALS_FILE:-${HOME:-}/.aws/credentials}}
timeout=${CREDBROKER_TIMEOUT:-15}
retries=${CREDBROKER_RETRIES:-4}
ca_file=${CREDBROKER_CA_FILE:-}
cacert=''
verbose=0
[ "${CREDBROKER_VERBOSE:-}" = 1 ] && verbose=1

need_arg() { [ $# -ge 2 ] || die 2 "$1 needs a value (see --help)"; }
while [ $# -gt 0 ]; do
  case $1 in
    --*=*) opt=${1%%=*}; val=${1#*=}; shift; set -- "$opt" "$val" "$@"; continue ;;
  esac
  case $1 in
    --url) need_arg "$@"; url=$2; shift 2 ;;
    --role) need_arg "$@"; role=$2; shift 2 ;;
    --duration) need_arg "$@"; duration=$2; shift 2 ;;
    --audience) need_arg "$@"; audience=$2; shift 2 ;;
    --region) need_arg "$@"; region=$2; shift 2 ;;
    --provider) need_arg "$@"; provider=$2; shift 2 ;;
    --token-env) need_arg "$@"; token_env=$2; shift 2 ;;
    --token-file) need_arg "$@"; token_file=$2; shift 2 ;;
    --azure-service-connection-id) need_arg "$@"; azure_sc=$2; shift 2 ;;
    --format) need_arg "$@"; format=$2; shift 2 ;;
    --output) need_arg "$@"; output=$2; shift 2 ;;
    --profile) need_arg "$@"; profile=$2; shift 2 ;;
    --credentials-file) need_arg "$@"; credentials_file=$2; shift 2 ;;
    --timeout) need_arg "$@"; timeout=$2; shift 2 ;;
    --retries) need_arg "$@"; retries=$2; shift 2 ;;
    --ca-file) need_arg "$@"; ca_file=$2; shift 2 ;;
    -v|--verbose) verbose=1; shift ;;
    -h|--help) usage; exit 0 ;;
    --version) echo "$VERSION"; exit 0 ;;
    *) die 2 "unknown option '$(printf '%s' "$1" | cut -c1-40)' (see --help)" ;;
  esac
done

# ---- validate options ------------------------------------------------------------------------
is_uint() { case $1 in '' | *[!0-9]*) return 1 ;; *) return 0 ;; esac; }
command -v curl >/dev/null 2>&1 || die 2 "curl is required"
case $format in
  env) ;;
  profile) [ -z "$output" ] || die 2 "--output does not apply to --format profile (see --credentials-file)" ;;
  *) die 2 "this sh variant writes --format env or profile (use the Node client for $format)" ;;
esac
case $profile in '' | *[!A-Za-z0-9_.+@:-]*) die 2 "--profile may use letters, digits and _.+@:- only" ;; esac
[ -n "$url" ] || die 2 "the broker URL is required: --url or CREDBROKER_URL (see --help)"
[ -n "$role" ] || die 2 "the role is required: --role or CREDBROKER_ROLE (see --help)"
url=${url%/}
while [ "${url%/}" != "$url" ]; do url=${url%/}; done
# shellcheck disable=SC1003 # a literal backslash, not an escape attempt
case $url in
  *'?'* | *'#'* | *'@'* | *[[:space:]]* | *'"'* | *"'"* | *'\'*) die 2 "--url must be a plain URL without credentials, query or fragment" ;;
esac
is_loopback() { # is_loopback HOST[:PORT]: exactly localhost, [::1] or 127.x.y.z, with an optional numeric port
  case $1 in
    '[::1]') return 0 ;;
    '[::1]:'*) _port=${1#'[::1]:'}; set -- '[::1]' ;;
    *:*) _port=${1#*:}; set -- "${1%%:*}" ;;
    *) _port= ;;
  esac
  case $_port in *[!0-9]*) return 1 ;; esac
  case $1 in
    '[::1]' | localhost) return 0 ;;
    127.*) printf '%s\n' "$1" | grep -Eq '^127\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}$' ;;
    *) return 1 ;;
  esac
}
case $url in
  https://?*) ;;
  http://?*) _hostport=${url#http://}; is_loopback "${_hostport%%/*}" ||
    die 2 "--url must use https (plain http is accepted only for loopback addresses)" ;;
  *) die 2 "--url must use https (plain http is accepted only for loopback addresses)" ;;
esac
case $role in *[!A-Za-z0-9_.:@+=,/-]* | '') die 2 "--role is not a valid role name" ;; esac
if [ -n "$duration" ]; then
  is_uint "$duration" && [ "$duration" -ge 900 ] && [ "$duration" -le 43200 ] || die 2 "--duration must be between 900 and 43200"
fi
is_uint "$timeout" && [ "$timeout" -ge 1 ] || die 2 "--timeout must be a whole number of seconds"
is_uint "$retries" && [ "$retries" -le 20 ] || die 2 "--retries must be between 0 and 20"
if [ -n "$ca_file" ]; then
  case $ca_file in *[\\\"]*) die 2 "--ca-file: a path without quotes or backslashes, please" ;; esac
  [ -r "$ca_file" ] && grep -q -e '-----BEGIN CERTIFICATE-----' "$ca_file" 2>/dev/null || die 2 "--ca-file $ca_file: cannot read a PEM certificate from it"
fi
case $region in *[!a-z0-9-]*) die 2 "--region is not a valid AWS region" ;; esac
case $token_env in *[!A-Za-z0-9_]*) die 2 "--token-env is not a valid variable name" ;; esac
audience_explicit=0
if [ -n "$audience" ]; then audience_explicit=1; else audience=$url; fi
# The audience goes into JSON bodies and query strings: keep it to URL-ish characters.
case $audience in *[!][A-Za-z0-9_.:/@%+=,~-]*) die 2 "--audience has characters this variant does not accept" ;; esac

case $provider in
  '') ;;
  github|github-actions) provider=github ;;
  azure|azure-devops|azure-pipelines) provider=azure ;;
  terraform|terraform-cloud|tfc|hcp-terraform) provider=terraform ;;
  gitlab|circleci|buildkite|bitbucket|jenkins|generic) ;;
  *) die 2 "--provider must be one of github, gitlab, circleci, buildkite, bitbucket, jenkins, azure, terraform, generic" ;;
esac
if [ -z "$provider" ]; then
  if [ -n "$token_file$token_env" ]; then provider=generic
  elif [ "${GITHUB_ACTIONS:-}" = true ]; then provider=github
  elif [ "${GITLAB_CI:-}" = true ]; then provider=gitlab
  elif [ "${CIRCLECI:-}" = true ]; then provider=circleci
  elif [ "${BUILDKITE:-}" = true ]; then provider=buildkite
  elif [ -n "${BITBUCKET_BUILD_NUMBER:-}${BITBUCKET_STEP_OIDC_TOKEN:-}" ]; then provider=bitbucket
  elif [ "${TF_BUILD:-}" = True ] || [ "${TF_BUILD:-}" = true ]; then provider=azure
  elif [ -n "${TFC_WORKLOAD_IDENTITY_TOKEN:-}${TFC_RUN_ID:-}" ]; then provider=terraform
  elif [ -n "${JENKINS_URL:-}" ]; then provider=jenkins
  else die 3 "no CI provider detected: use --provider, --token-file or --token-env"
  fi
fi

tmp=$(mktemp -d 2>/dev/null) || die 1 "cannot create a temporary directory"
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

# ---- helpers ---------------------------------------------------------------------------------
jwt_ok() { # the value looks like a JWT (three base64url segments)
  case $1 in *[!A-Za-z0-9._-]* | '') return 1 ;; esac
  [ "$(printf '%s' "$1" | tr -cd . | wc -c | tr -d ' ')" = 2 ]
}
json_str() { # json_str FIELD FILE: a simple string field of a JSON document (ids, codes, JWTs)
  tr -d '\r\n' <"$2" | sed -n "s/.*\"$1\"[[:space:]]*:[[:space:]]*\"\\([^\"\\\\]*\\)\".*/\\1/p" | head -n 1
}
header_val() { # header_val NAME FILE: a response header's value (name in lower case; last response)
  tr -d '\r' <"$2" | awk -v n="$1" 'index($0, ":") { k = tolower(substr($0, 1, index($0, ":") - 1)); if (k == n) { v = substr($0, index($0, ":") + 1); sub(/^[ \t]+/, "", v) } } END { print v }'
}
sleep_backoff() { # sleep_backoff RETRY_NUMBER(1..) [RETRY_AFTER]: Retry-After, else equal-jitter exponential
  if [ -n "${2:-}" ]; then
    secs=$(awk -v r="$2" -v s="$$" 'BEGIN { srand(); srand(srand() + s); printf "%.2f", r + rand() * 0.25 }')
  else
    secs=$(awk -v a="$1" -v s="$$" 'BEGIN { srand(); srand(srand() + s); c = 0.5 * 2 ^ (a - 1); if (c > 10) c = 10; printf "%.2f", c / 2 + rand() * c / 2 }')
  fi
  debug "retry in ${secs}s"
  sleep "$secs"
}

# ---- the egress proxy, decided here as curl and the Node client decide it --------------------
# https_proxy / HTTPS_PROXY for https:// URLs, http_proxy / HTTP_PROXY for http:// ones (lower case
# first), minus NO_PROXY: `*` alone, host names (and their subdomains), IPv4 addresses and CIDRs.
# The decision goes to curl in its stdin config (`proxy`, or `noproxy = "*"`), so the credentials
# in a proxy URL never reach argv, and -v can say which proxy was used (never its credentials).
is_ipv4() { printf '%s\n' "$1" | grep -Eq '^[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}$'; }
ipv4_in() { # ipv4_in IP ENTRY: ENTRY is that address, or a CIDR holding it
  awk -v h="$1" -v e="$2" 'function ip(s, a, n, i) { n = split(s, a, "."); if (n != 4) return -1
      for (i = 1; i <= 4; i++) if (a[i] !~ /^[0-9]+$/ || a[i] + 0 > 255) return -1
      return ((a[1] * 256 + a[2]) * 256 + a[3]) * 256 + a[4] }
    BEGIN { n = split(e, p, "/"); b = n > 1 ? p[2] : 32; if (n > 2 || b !~ /^[0-9]+$/ || b + 0 > 32) exit 1
      x = ip(h); y = ip(p[1]); if (x < 0 || y < 0) exit 1; d = 2 ^ (32 - b); exit (int(x / d) == int(y / d)) ? 0 : 1 }'
}
no_proxy_matches() { # no_proxy_matches HOST LIST: 0 bypass, 1 proxy, 2 an IPv6 host (curl decides)
  _h=$(printf '%s' "$1" | tr 'A-Z' 'a-z'); _h=${_h%.}
  _l=$(printf '%s' "$2" | tr 'A-Z,\t' 'a-z  ')
  set -f; set -- $_l; set +f
  [ "$#" = 1 ] && [ "$1" = '*' ] && return 0
  case $_h in *:*) return 2 ;; esac
  if is_ipv4 "$_h"; then
    for _e; do ipv4_in "$_h" "$_e" && return 0; done
    return 1
  fi
  for _e; do
    _e=${_e%.}; _e=${_e#.}
    [ -n "$_e" ] || continue
    [ "$_h" = "$_e" ] && return 0
    case $_h in *."$_e") return 0 ;; esac
  done
  return 1
}
parse_proxy() { # parse_proxy VARNAME VALUE: proxy_url (for curl), proxy_show (scheme://host:port); dies if unusable
  _p=$(printf '%s' "$2" | tr -d ' \t\r\n')
  # shellcheck disable=SC1003 # a literal backslash
  case $_p in *'"'* | *'\'*) die 2 "$1: a proxy URL without quotes or backslashes, please (see --help)" ;; esac
  case $_p in
    http://* | https://*) ;;
    *://*) die 2 "$1: ${_p%%://*} proxies are not supported (http:// or https:// only) (see --help)" ;;
    *) _p="http://$_p" ;;
  esac
  _s=${_p%%://*}; _r=${_p#*://}; _r=${_r%/}
  case $_r in '' | */* | *'?'* | *'#'* | *@) die 2 "$1 must be scheme://[user:password@]host:port, without a path (see --help)" ;; esac
  _hp=${_r##*@}
  _dp=80; [ "$_s" = https ] && _dp=443
  case $_hp in
    \[*\]:*) ;;
    \[*\]) _hp="$_hp:$_dp" ;;
    *:*) ;;
    *) _hp="$_hp:$_dp" ;;
  esac
  proxy_url=$_p; proxy_show="$_s://$_hp"
}
proxy_var_for() { # proxy_var_for URL: proxy_var, the variable naming its proxy (empty: none)
  proxy_var=''
  case $1 in https://*) set -- https_proxy HTTPS_PROXY ;; *) set -- http_proxy HTTP_PROXY ;; esac
  for _v; do eval "_pv=\${$_v:-}"; if [ -n "$(printf '%s' "$_pv" | tr -d ' \t')" ]; then proxy_var=$_v; return 0; fi; done
}
announced=' '
proxy_for() { # proxy_for URL: proxy_mode (proxy | direct | curl) and, when proxied, proxy_url / proxy_show
  proxy_mode=direct
  proxy_var_for "$1"
  [ -n "$proxy_var" ] || return 0
  eval "parse_proxy \"\$proxy_var\" \"\${$proxy_var}\""
  _origin=$(printf '%s' "$1" | sed 's#^\([a-z]*://[^/?#]*\).*#\1#')
  _host=${_origin#*://}; _host=${_host##*@}
  case $_host in \[*) _host=${_host%%]*}; _host=${_host#[} ;; *) _host=${_host%%:*} ;; esac
  _np=${no_proxy:-${NO_PROXY:-}}
  _m=1
  [ -n "$_np" ] && { no_proxy_matches "$_host" "$_np"; _m=$?; }
  case $_m in 0) proxy_mode=direct ;; 1) proxy_mode=proxy ;; *) proxy_mode=curl ;; esac
  case $announced in *" $_origin "*) return 0 ;; esac
  announced="$announced$_origin "
  case $proxy_mode in
    proxy) debug "$_origin: through the proxy $proxy_show ($proxy_var)" ;;
    direct) debug "$_origin: direct (NO_PROXY)" ;;
    curl) debug "$_origin: curl applies NO_PROXY to this IPv6 address (proxy $proxy_show, $proxy_var)" ;;
  esac
}
# net_why: `why` (the Node client's words) and `spent` for a curl failure, proxy failures included.
net_why() {
  spent=1
  case $curl_rc in
    5) spent=0; why="cannot resolve the proxy host" ;;
    6) spent=0; why="cannot resolve the host" ;;
    7) spent=0; if [ "$proxy_mode" = proxy ]; then why="cannot connect to the proxy"; else why="cannot connect"; fi ;;
    28) why="timed out after ${timeout}s" ;;
    35 | 51 | 53 | 54 | 58 | 59 | 60 | 64 | 66 | 77 | 80 | 82 | 83 | 90 | 91) why="TLS error" ;;
    *)
      case $http_connect in
        000 | 200 | '') why="connection lost" ;;
        401 | 407) spent=0; why="the proxy refused the tunnel (HTTP $http_connect, proxy authentication required)" ;;
        *) spent=0; why="the proxy refused the tunnel (HTTP $http_connect)" ;;
      esac ;;
  esac
}

# curl_call OUTFILE HEADERFILE AUTHHEADER [curl args…] URL: sets http_code, http_connect and curl_rc.
# The Authorization header (and a proxy's credentials) travel in curl's config on stdin, so they
# never appear in argv.
curl_call() {
  _out=$1; _hdr=$2; _auth=$3
  shift 3
  for _last; do :; done
  proxy_for "$_last"
  : >"$_out"; : >"$_hdr"
  # cacert: set around the broker's request only (--ca-file); provider endpoints keep the system CAs.
  # proxytunnel: CONNECT for http:// targets too, as the Node client (a proxy never sees a header).
  _w=$({ printf 'header = "Authorization: %s"\n' "$_auth"; [ -z "$cacert" ] || printf 'cacert = "%s"\n' "$cacert"
    case $proxy_mode in
      proxy) printf 'proxy = "%s"\nproxytunnel\n' "$proxy_url" ;;
      direct) printf 'noproxy = "*"\n' ;;
      curl) printf 'proxytunnel\n' ;;
    esac; } |
    http_proxy=${http_proxy:-${HTTP_PROXY:-}} curl -sS -K - -o "$_out" -D "$_hdr" -w '%{http_code} %{http_connect}' --connect-timeout "$timeout" --max-time "$timeout" \
      --max-filesize 262144 -A "credbroker-client.sh/$VERSION" "$@" 2>"$tmp/curl.err")
  curl_rc=$?
  http_code=${_w%% *}; http_connect=${_w##* }
}

# fetch_endpoint NAME JSONFIELD AUTH [curl args…]: a token from a provider endpoint, with retries.
fetch_endpoint() {
  _name=$1; _field=$2; _auth=$3
  shift 3
  _i=0
  while :; do
    curl_call "$tmp/tok" "$tmp/tokh" "$_auth" "$@"
    case $curl_rc:$http_code in 0:2??) break ;; esac
    case $curl_rc:$http_code in
      0:429 | 0:408 | 0:5??) _why="HTTP $http_code" ;;
      0:*) die 3 "$_name token endpoint answered HTTP $http_code" ;;
      *) net_why; _why=$why ;;
    esac
    [ "$_i" -lt "$retries" ] && [ "$_i" -lt 3 ] || die 3 "$_name token endpoint failed: $_why"
    debug "$_name token endpoint: $_why (curl exit $curl_rc)"
    _i=$((_i + 1))
    sleep_backoff "$_i" "$(header_val retry-after "$tmp/tokh" | tr -cd 0-9)"
  done
  token=$(json_str "$_field" "$tmp/tok")
  rm -f "$tmp/tok"
  jwt_ok "$token" || die 3 "$_name token endpoint returned no token"
}

from_var() { # from_var NAME HINT
  eval "token=\${$1:-}"
  [ -n "$token" ] || die 3 "environment variable $1 is not set: $2"
  token=$(printf '%s' "$token" | tr -d ' \r\n\t')
  jwt_ok "$token" || die 3 "environment variable $1 does not hold a JWT"
}
from_file() {
  [ -f "$1" ] && [ -r "$1" ] || die 3 "cannot read token file $1"
  token=$(tr -d ' \r\n\t' <"$1")
  jwt_ok "$token" || die 3 "token file $1 does not hold a JWT"
}
env_or_file() { if [ -n "$token_file" ]; then from_file "$token_file"; else from_var "${token_env:-$1}" "$2"; fi; }

can_mint=0
get_token() {
  case $provider in
    github)
      [ -n "${ACTIONS_ID_TOKEN_REQUEST_URL:-}" ] && [ -n "${ACTIONS_ID_TOKEN_REQUEST_TOKEN:-}" ] ||
        die 3 'ACTIONS_ID_TOKEN_REQUEST_URL/ACTIONS_ID_TOKEN_REQUEST_TOKEN are not set: give the job "permissions: id-token: write"'
      # -G appends "&audience=…" to the URL (which already has a query string), URL-encoded.
      fetch_endpoint GitHub value "bearer $ACTIONS_ID_TOKEN_REQUEST_TOKEN" -G --data-urlencode "audience=$audience" \
        -H 'Accept: application/json' "$ACTIONS_ID_TOKEN_REQUEST_URL" ;;
    buildkite)
      [ -n "${BUILDKITE_JOB_ID:-}" ] && [ -n "${BUILDKITE_AGENT_ACCESS_TOKEN:-}" ] || die 3 "BUILDKITE_JOB_ID/BUILDKITE_AGENT_ACCESS_TOKEN are not set"
      _ep=${BUILDKITE_AGENT_ENDPOINT:-https://agent.buildkite.com/v3}
      fetch_endpoint Buildkite token "Token $BUILDKITE_AGENT_ACCESS_TOKEN" -X POST -H 'Content-Type: application/json' \
        -H 'Accept: application/json' --data "{\"audience\":\"$audience\",\"claims\":[\"organization_id\",\"pipeline_id\"]}" "${_ep%/}/jobs/$BUILDKITE_JOB_ID/oidc/tokens" ;;
    azure)
      [ -n "${SYSTEM_OIDCREQUESTURI:-}" ] || die 3 "SYSTEM_OIDCREQUESTURI is not set: run inside an Azure Pipelines job"
      # shellcheck disable=SC2016 # $(System.AccessToken) is Azure macro syntax, printed as is
      [ -n "${SYSTEM_ACCESSTOKEN:-}" ] || die 3 'SYSTEM_ACCESSTOKEN is not set: map it into the step with env: SYSTEM_ACCESSTOKEN: $(System.AccessToken)'
      case $azure_sc in '' | *[!A-Za-z0-9-]*) die 3 "no valid service connection: set --azure-service-connection-id or CREDBROKER_AZURE_SERVICE_CONNECTION_ID" ;; esac
      case $SYSTEM_OIDCREQUESTURI in *'?'*) _sep='&' ;; *) _sep='?' ;; esac
      fetch_endpoint Azure oidcToken "Bearer $SYSTEM_ACCESSTOKEN" -X POST -H 'Content-Type: application/json' \
        -H 'Accept: application/json' --data '{}' "$SYSTEM_OIDCREQUESTURI${_sep}api-version=7.1&serviceConnectionId=$azure_sc" ;;
    circleci)
      if [ "$audience_explicit" = 1 ]; then
        command -v circleci >/dev/null 2>&1 || die 3 'cannot run "circleci run oidc get": the CircleCI CLI is needed for a custom audience'
        token=$(circleci run oidc get --claims "{\"aud\":\"$audience\"}" 2>"$tmp/cci.err") || die 3 '"circleci run oidc get" failed'
        token=$(printf '%s' "$token" | tr -d ' \r\n\t')
        jwt_ok "$token" || die 3 'the output of "circleci run oidc get" does not hold a JWT'
      else
        from_var CIRCLE_OIDC_TOKEN_V2 "enable OIDC for the project, or set --audience"
      fi ;;
    gitlab) env_or_file CREDBROKER_ID_TOKEN "declare it under id_tokens: in .gitlab-ci.yml" ;;
    bitbucket) env_or_file BITBUCKET_STEP_OIDC_TOKEN 'set "oidc: true" on the step' ;;
    terraform) env_or_file TFC_WORKLOAD_IDENTITY_TOKEN "set the workspace variable TFC_WORKLOAD_IDENTITY_AUDIENCE" ;;
    jenkins) env_or_file CREDBROKER_ID_TOKEN "bind an OpenID Connect id token credential with withCredentials" ;;
    generic)
      [ -n "$token_file$token_env" ] || die 2 "--provider generic needs --token-file or --token-env"
      env_or_file "$token_env" "" ;;
  esac
}
case $provider in
  github | buildkite | azure) can_mint=1 ;;
  circleci) can_mint=$audience_explicit ;;
esac

# A proxy variable that cannot be used stops the client now, before a token is spent.
for _u in https://x http://x; do
  proxy_var_for "$_u"
  [ -z "$proxy_var" ] || eval "parse_proxy \"\$proxy_var\" \"\${$proxy_var}\""
done

# ---- the exchange ----------------------------------------------------------------------------
get_token
debug "OIDC token obtained from $provider"
body="{\"role\":\"$role\"}"
[ -n "$duration" ] && body="{\"role\":\"$role\",\"duration_seconds\":$duration}"

attempt=0
used_fresh=0
history=''
while :; do
  cacert=$ca_file
  curl_call "$tmp/body" "$tmp/hdr" "Bearer $token" -X POST -H 'Content-Type: application/json' \
    -H 'Accept: text/plain' --data "$body" "$url/v1/credentials?format=env"
  cacert=''
  if [ "$curl_rc" = 0 ] && [ "$http_code" = 200 ]; then break; fi

  code=''; request_id=''; message=''
  if [ "$curl_rc" = 0 ]; then
    # Only the broker's envelope {"error":{"code","message","request_id"}} is read: another server's
    # JSON (a proxy's {"message": …}) says nothing about the broker, as in the Node client.
    tr -d '\r\n' <"$tmp/body" | sed -n 's/^[[:space:]]*{[[:space:]]*"error"[[:space:]]*:[[:space:]]*{\(.*\)}[[:space:]]*}[[:space:]]*$/\1/p' >"$tmp/envelope"
    code=$(json_str code "$tmp/envelope" | tr -cd 'A-Z0-9_' | cut -c1-60)
    request_id=$(json_str request_id "$tmp/envelope" | tr -cd 'A-Za-z0-9._:-' | cut -c1-100)
    [ -n "$request_id" ] || request_id=$(header_val x-request-id "$tmp/hdr" | tr -cd 'A-Za-z0-9._:-' | cut -c1-100)
    message=$(json_str message "$tmp/envelope" | tr -cd '[:print:]' | cut -c1-200)
  fi
  # "code X, request id Y, HTTP N" with absent parts left out: the Node client's words exactly.
  meta="${code:+code $code, }${request_id:+request id $request_id, }HTTP $http_code"
  detail=${message:+: $message}

  retry_after=''
  spent=1
  case $curl_rc:$http_code in
    0:401)
      if { [ "$code" = ERR_TOKEN_REPLAYED ] || [ "$code" = ERR_TOKEN_EXPIRED ]; } && [ "$can_mint" = 1 ] && [ "$used_fresh" = 0 ]; then
        used_fresh=1
        debug "$code: fetching a fresh OIDC token once"
        get_token
        continue
      fi
      hint=''
      if { [ "$code" = ERR_TOKEN_REPLAYED ] || [ "$code" = ERR_TOKEN_EXPIRED ]; } && [ "$can_mint" = 0 ]; then
        hint="; $provider cannot mint a fresh token from within the job${history:+ (an earlier attempt failed: $history)}; re-run the job"
      fi
      die 4 "the broker rejected the OIDC token$detail$hint ($meta)" ;;
    0:403) die 5 "access denied by the broker$detail ($meta)" ;;
    0:502)
      [ "$code" = ERR_STS_ACCESS_DENIED ] && die 5 "AWS STS refused to assume the role$detail ($meta)"
      [ "$code" = ERR_STS_REJECTED ] && die 7 "the broker rejected the request$detail ($meta)"
      why="HTTP 502" ;;
    0:500)
      [ "$code" = ERR_STS_CREDENTIALS ] && die 6 "the broker cannot issue credentials, and retrying will not help$detail ($meta)"
      why="HTTP 500"; retry_after=$(header_val retry-after "$tmp/hdr" | tr -cd 0-9) ;;
    0:503) spent=0; why="HTTP 503"; retry_after=$(header_val retry-after "$tmp/hdr" | tr -cd 0-9) ;;
    0:429 | 0:408 | 0:5??) why="HTTP $http_code"; retry_after=$(header_val retry-after "$tmp/hdr" | tr -cd 0-9) ;;
    0:3??) die 7 "the broker answered a redirect; check --url ($meta)" ;;
    0:*) die 7 "the broker rejected the request$detail ($meta)" ;;
    *) net_why ;;
  esac
  if [ -n "$retry_after" ] && [ "$retry_after" -gt 120 ]; then
    die 6 "broker unavailable (asked to retry after ${retry_after}s)$detail ($meta)"
  fi
  if [ "$attempt" -ge "$retries" ]; then
    if [ "$curl_rc" = 0 ]; then die 6 "broker unavailable after $((attempt + 1)) attempt(s)$detail ($meta)"; fi
    die 6 "broker $url unavailable after $((attempt + 1)) attempt(s): $why"
  fi
  debug "broker: $why (curl exit $curl_rc)"
  history=$why
  attempt=$((attempt + 1))
  sleep_backoff "$attempt" "$retry_after"
  # Only a 503 (or a request that never left) releases a one-time token: mint anew where possible.
  if [ "$spent" = 1 ] && [ "$can_mint" = 1 ]; then get_token; debug "fresh OIDC token obtained for the retry"; fi
done

# Validate before anyone evals it: only export lines of single-quoted AWS_ values.
tr -d '\r' <"$tmp/body" | grep -v '^$' >"$tmp/env" || true
if grep -qv "^export AWS_[A-Z_]*='[!-&(-~]*'\$" "$tmp/env" || ! grep -q '^export AWS_SESSION_TOKEN=' "$tmp/env" ||
  ! grep -q '^export AWS_ACCESS_KEY_ID=' "$tmp/env" || ! grep -q '^export AWS_SECRET_ACCESS_KEY=' "$tmp/env"; then
  die 6 "the broker answered 200 with a malformed env body (request id $(header_val x-request-id "$tmp/hdr" | tr -cd 'A-Za-z0-9._:-' | cut -c1-100))"
fi
if [ -n "$region" ]; then
  printf "export AWS_REGION='%s'\nexport AWS_DEFAULT_REGION='%s'\n" "$region" "$region" >>"$tmp/env"
fi

# write_private SRC DEST: DEST gets SRC's content, mode 0600, through a temp file that mktemp creates
# (unpredictable name, O_EXCL) in DEST's directory and renames over DEST, so nothing is written
# through a planted symlink and no reader sees a partial file. A symlink as DEST is refused.
write_private() {
  [ -L "$2" ] && die 8 "cannot write $2: it is a symbolic link"
  [ -d "$2" ] && die 8 "cannot write $2: it is a directory"
  _dir=$(dirname "$2")
  mkdir -p "$_dir" 2>/dev/null || die 8 "cannot write $2: cannot create $_dir"
  _t=$(mktemp "$_dir/.credbroker.XXXXXXXX" 2>/dev/null) || die 8 "cannot write $2"
  if cat "$1" >"$_t" 2>/dev/null && chmod 600 "$_t" 2>/dev/null && mv -f "$_t" "$2" 2>/dev/null; then
    return 0
  fi
  rm -f "$_t"
  die 8 "cannot write $2"
}
env_value() { sed -n "s/^export $1='\\(.*\\)'\$/\\1/p" "$tmp/env" | head -n 1; }

if [ "$format" = profile ]; then
  {
    printf '[%s]\n' "$profile"
    printf 'aws_access_key_id = %s\n' "$(env_value AWS_ACCESS_KEY_ID)"
    printf 'aws_secret_access_key = %s\n' "$(env_value AWS_SECRET_ACCESS_KEY)"
    printf 'aws_session_token = %s\n' "$(env_value AWS_SESSION_TOKEN)"
    [ -z "$region" ] || printf 'region = %s\n' "$region"
  } >"$tmp/section"
  [ -L "$credentials_file" ] && die 8 "cannot write $credentials_file: it is a symbolic link"
  : >"$tmp/old"
  if [ -e "$credentials_file" ]; then cat "$credentials_file" >"$tmp/old" 2>/dev/null || die 8 "cannot read $credentials_file"; fi
  # Replace the section in place (or append it), keeping every other section and comment.
  awk -v name="$profile" -v sect="$tmp/section" '
    function emit(  l) { while ((getline l < sect) > 0) { print l; last = l } close(sect); placed = 1 }
    /^[ \t]*\[[^]]*\][ \t]*$/ {
      h = $0; sub(/^[ \t]*\[[ \t]*/, "", h); sub(/[ \t]*\][ \t]*$/, "", h)
      intarget = (h == name)
      if (intarget) { if (!placed) emit(); next }
    }
    !intarget { print; last = $0 }
    END { if (!placed) { if (NR > 0 && last !~ /^[ \t]*$/) print ""; emit() } }
  ' "$tmp/old" >"$tmp/new" || die 1 "cannot update the profile"
  write_private "$tmp/new" "$credentials_file"
  printf '%s: wrote profile %s to %s: credentials expire at %s\n' "$PROG" "$profile" "$credentials_file" "$(env_value AWS_CREDENTIAL_EXPIRATION)" >&2
elif [ -n "$output" ]; then
  write_private "$tmp/env" "$output"
  printf '%s: wrote %s: credentials expire at %s\n' "$PROG" "$output" "$(env_value AWS_CREDENTIAL_EXPIRATION)" >&2
else
  cat "$tmp/env" || exit 8
fi
exit 0
