// credbroker GitHub Action: AWS credentials for this job from a credbroker (see action.yml).
// Built from action/src/ and client/src/ by `npm run build:client` (esbuild): edit the sources.

// action/src/main.mjs
import path3 from "node:path";

// client/src/errors.mjs
var PROG = "credbroker-client";
var VERSION = "0.1.0";
var EXIT = Object.freeze({
  OK: 0,
  INTERNAL: 1,
  // a bug or an unexpected local failure
  USAGE: 2,
  // bad option, missing --url/--role, invalid value
  TOKEN: 3,
  // could not obtain the job's OIDC token (provider not detected, endpoint failed, …)
  TOKEN_REJECTED: 4,
  // token missing/invalid/expired/replayed (broker 401), or already exchanged by this job
  DENIED: 5,
  // broker answered 403 (policy denied, revoked) or STS refused the role (502 ERR_STS_ACCESS_DENIED)
  UNAVAILABLE: 6,
  // broker unreachable, timed out, 429/5xx after all retries, a malformed answer, or 500 ERR_STS_CREDENTIALS (not retried)
  REJECTED: 7,
  // broker rejected the request itself (400, 413, 415, other 4xx, 502 ERR_STS_REJECTED, redirects)
  OUTPUT: 8
  // could not write the output file
});
var ClientError = class extends Error {
  /** @param {number} exitCode @param {string} message @param {{code?:string,requestId?:string,status?:number}} [info] */
  constructor(exitCode, message, info2 = {}) {
    super(message);
    this.exitCode = exitCode;
    this.code = info2.code;
    this.requestId = info2.requestId;
    this.status = info2.status;
  }
};
var usage = (msg) => new ClientError(EXIT.USAGE, `${msg} (see --help)`);

// client/src/log.mjs
var redactions = /* @__PURE__ */ new Set();
var JWT_LIKE = /eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*/g;
function clean(text, max = 300) {
  let s = String(text);
  for (const secret of redactions) if (secret) s = s.split(secret).join("[redacted]");
  s = s.replace(JWT_LIKE, "[redacted-jwt]");
  s = s.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]+/g, " ").replace(/\s+/g, " ").trim();
  return s.length > max ? `${s.slice(0, max)}…` : s;
}
var verbose = false;
var setVerbose = (on) => {
  verbose = on;
};
var debug = (msg) => {
  if (verbose) process.stderr.write(`${PROG}: debug: ${clean(msg, 500)}
`);
};
function describeError(err) {
  const parts = [];
  if (err.code) parts.push(`code ${err.code}`);
  if (err.requestId) parts.push(`request id ${err.requestId}`);
  if (err.status) parts.push(`HTTP ${err.status}`);
  const suffix = parts.length ? ` (${clean(parts.join(", "), 200)})` : "";
  return `${clean(err.message, 400)}${suffix}`;
}

// client/src/options.mjs
import { parseArgs } from "node:util";
import { readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";

// client/src/proxy.mjs
import net from "node:net";
var HTTPS_VARS = ["https_proxy", "HTTPS_PROXY"];
var HTTP_VARS = ["http_proxy", "HTTP_PROXY"];
var NO_PROXY_VARS = ["no_proxy", "NO_PROXY"];
function fromEnv(env, names) {
  for (const name of names) {
    const value = env[name];
    if (value !== void 0 && value.trim() !== "") return { name, value };
  }
  return void 0;
}
function parseProxy(text, source) {
  const raw = text.trim();
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(raw) ? raw : `http://${raw}`;
  let url;
  try {
    url = new URL(withScheme);
  } catch {
    throw usage(`${source} is not a proxy URL (expected http://host:port)`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw usage(`${source}: ${url.protocol.replace(/:$/, "")} proxies are not supported (http:// or https:// only)`);
  if (!url.hostname || url.pathname !== "/" && url.pathname !== "" || url.search || url.hash) {
    throw usage(`${source} must be scheme://[user:password@]host:port, without a path`);
  }
  let authorization;
  if (url.username || url.password) {
    try {
      authorization = `Basic ${Buffer.from(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`).toString("base64")}`;
    } catch {
      throw usage(`${source}: badly percent-encoded credentials`);
    }
  }
  const port = url.port || (url.protocol === "https:" ? "443" : "80");
  return { url, display: `${url.protocol}//${url.hostname}:${port}`, authorization, source };
}
function ipv4ToInt(ip) {
  return ip.split(".").reduce((n, part) => n * 256 + Number(part), 0);
}
function ipv6ToBigInt(ip) {
  let text = ip;
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    const n = ipv4ToInt(dotted[1]);
    text = `${text.slice(0, -dotted[1].length)}${(n >>> 16).toString(16)}:${(n & 65535).toString(16)}`;
  }
  const [head, tail] = text.split("::");
  const left = head === "" ? [] : head.split(":");
  const right = tail === void 0 || tail === "" ? [] : tail.split(":");
  const groups = tail === void 0 ? left : [...left, ...Array(8 - left.length - right.length).fill("0"), ...right];
  if (groups.length !== 8) return void 0;
  return groups.reduce((n, g) => (n << 16n) + BigInt(Number.parseInt(g, 16)), 0n);
}
function cidrMatch(target, family, entry) {
  const [address, bitsText] = entry.split("/");
  if (net.isIP(address) !== family) return false;
  const width = family === 4 ? 32 : 128;
  const bits = bitsText === void 0 ? width : Number(bitsText);
  if (!Number.isInteger(bits) || bits < 0 || bits > width) return false;
  if (family === 4) {
    if (bits === 0) return true;
    const mask = bits === 32 ? 4294967295 : ~(4294967295 >>> bits) >>> 0;
    return (ipv4ToInt(target) & mask) >>> 0 === (ipv4ToInt(address) & mask) >>> 0;
  }
  const a = ipv6ToBigInt(target);
  const b = ipv6ToBigInt(address);
  if (a === void 0 || b === void 0) return false;
  const shift = BigInt(width - bits);
  return a >> shift === b >> shift;
}
function bypassesProxy(noProxy, hostname) {
  const entries = noProxy.split(/[\s,]+/).map((e) => e.trim().toLowerCase()).filter((e) => e !== "");
  if (entries.length === 1 && entries[0] === "*") return true;
  const host = hostname.replace(/^\[|\]$/g, "").toLowerCase().replace(/\.$/, "");
  const family = net.isIP(host);
  for (const raw of entries) {
    if (family !== 0) {
      if (cidrMatch(host, family, raw)) return true;
      continue;
    }
    const entry = raw.replace(/\.$/, "").replace(/^\./, "");
    if (entry !== "" && (host === entry || host.endsWith(`.${entry}`))) return true;
  }
  return false;
}
function proxyFor(target, env) {
  const found = fromEnv(env, target.protocol === "https:" ? HTTPS_VARS : HTTP_VARS);
  if (!found) return void 0;
  const proxy = parseProxy(found.value, found.name);
  const noProxy = fromEnv(env, NO_PROXY_VARS);
  if (noProxy && bypassesProxy(noProxy.value, target.hostname)) return void 0;
  return proxy;
}
function checkProxyEnvironment(env) {
  for (const names of [HTTPS_VARS, HTTP_VARS]) {
    const found = fromEnv(env, names);
    if (found) parseProxy(found.value, found.name);
  }
}
var TunnelError = class extends Error {
  /** @param {string} message @param {string} [detail] */
  constructor(message, detail) {
    super(message);
    this.detail = detail;
  }
};
var MAX_CONNECT_RESPONSE = 16 * 1024;
async function openTunnel(proxy, host, port) {
  const proxyPort = Number(proxy.url.port || (proxy.url.protocol === "https:" ? 443 : 80));
  const proxyHost = proxy.url.hostname.replace(/^\[|\]$/g, "");
  let socket;
  if (proxy.url.protocol === "https:") {
    const tls = process.getBuiltinModule("node:tls");
    socket = tls.connect({ host: proxyHost, port: proxyPort, ...net.isIP(proxyHost) ? {} : { servername: proxyHost }, ALPNProtocols: ["http/1.1"] });
  } else {
    socket = net.connect({ host: proxyHost, port: proxyPort });
  }
  const authority = net.isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
  return new Promise((resolve, reject) => {
    let buffered = Buffer.alloc(0);
    const fail = (e) => {
      cleanup();
      socket.destroy();
      reject(e);
    };
    const onData = (chunk) => {
      buffered = Buffer.concat([buffered, chunk]);
      const end = buffered.indexOf("\r\n\r\n");
      if (end === -1) {
        if (buffered.length > MAX_CONNECT_RESPONSE) fail(new TunnelError("the proxy sent an unreadable answer to CONNECT"));
        return;
      }
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(buffered.subarray(0, end).toString("latin1"));
      if (!status) return fail(new TunnelError("the proxy sent an unreadable answer to CONNECT"));
      if (status[1] !== "200") {
        const code = Number(status[1]);
        const auth = code === 407 || code === 401 ? ", proxy authentication required" : "";
        return fail(new TunnelError(`the proxy refused the tunnel (HTTP ${code}${auth})`, `CONNECT ${authority}`));
      }
      cleanup();
      const rest = buffered.subarray(end + 4);
      if (rest.length > 0) socket.unshift(rest);
      resolve(socket);
    };
    const onEnd = () => fail(new TunnelError("the proxy closed the connection during CONNECT"));
    const cleanup = () => {
      socket.off("data", onData);
      socket.off("error", fail);
      socket.off("end", onEnd);
    };
    socket.on("data", onData);
    socket.on("error", fail);
    socket.on("end", onEnd);
    const headers = [`CONNECT ${authority} HTTP/1.1`, `Host: ${authority}`, ...proxy.authorization ? [`Proxy-Authorization: ${proxy.authorization}`] : []];
    socket.write(`${headers.join("\r\n")}\r
\r
`);
  });
}

// client/src/options.mjs
var HELP = `Usage: ${PROG} --url URL --role NAME [options]

Gets this CI job's OIDC token, exchanges it at a credbroker for short-lived AWS credentials, and
writes them in the chosen format. Every option can also be set from the environment variable shown.

Broker request
  --url URL                  broker base URL (https; http only for loopback)      CREDBROKER_URL
  --role NAME                role to assume, as named in the broker's config      CREDBROKER_ROLE
  --duration SECONDS         session duration, 900..43200 (broker default if unset) CREDBROKER_DURATION
  --audience AUD             audience to request the OIDC token for               CREDBROKER_AUDIENCE
                             (default: the broker URL; used where the provider lets the job choose)
  --region REGION            also export AWS_REGION/AWS_DEFAULT_REGION (profile: region =) CREDBROKER_REGION
  --timeout SECONDS          per-request timeout (default 15)                     CREDBROKER_TIMEOUT
  --retries N                retries on network errors, 429 and 5xx (default 4)   CREDBROKER_RETRIES
  --ca-file FILE             PEM CA certificate(s) to trust for the broker (instead of the
                             system's), for a broker with a private CA                CREDBROKER_CA_FILE

Proxy (as curl): HTTPS_PROXY for https:// URLs, HTTP_PROXY for http:// ones (lower case first),
  NO_PROXY: hosts (and their subdomains), IP addresses, CIDRs, or *; for the token endpoint and the
  broker alike; -v says which proxy each origin went through, never its credentials

OIDC token
  --provider NAME            github | gitlab | circleci | buildkite | bitbucket | jenkins | azure |
                             terraform | generic (default: detected from the environment) CREDBROKER_PROVIDER
  --token-env NAME           read the token from this env var (GitLab/Jenkins default CREDBROKER_ID_TOKEN)
                                                                                  CREDBROKER_TOKEN_ENV
  --token-file PATH          read the token from this file                        CREDBROKER_TOKEN_FILE
  --azure-service-connection-id ID  Azure service connection to request the token for
                                         CREDBROKER_AZURE_SERVICE_CONNECTION_ID (or AZURESUBSCRIPTION_SERVICE_CONNECTION_ID)

Output
  --format FORMAT            env (default) | github-env | dotenv | bash-env | credential-process |
                             profile | json                                       CREDBROKER_FORMAT
  --output FILE              env/dotenv/json: write FILE (mode 0600) instead of stdout;
                             github-env/bash-env: append to FILE instead of $GITHUB_ENV/$BASH_ENV
                                                                                  CREDBROKER_OUTPUT
  --profile NAME             profile name for --format profile (default credbroker) CREDBROKER_PROFILE
  --credentials-file PATH    for --format profile (default $AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials)
                                                                                  CREDBROKER_CREDENTIALS_FILE
  --cache-dir DIR            credential-process cache (default: a directory per job under $RUNNER_TEMP,
                             $AGENT_TEMPDIRECTORY, $XDG_CACHE_HOME/credbroker or ~/.cache/credbroker;
                             entries are served only to the identity that obtained them) CREDBROKER_CACHE_DIR
  --refresh-before SECONDS   credential-process: re-exchange when fewer seconds remain (default 600)
                                                                                  CREDBROKER_REFRESH_BEFORE
  --no-cache                 credential-process: always exchange, never read or write the cache
  --status                   credential-process: describe the cache entry of this job (expiry, failed
                             renewals and back-off), never a secret; exchanges nothing
  --no-mask                  do not register the credentials with the CI's log masking   CREDBROKER_NO_MASK=1
                             (Buildkite redactor; GitHub ::add-mask:: / Azure ##vso[task.setsecret]
                             on stdout when stdout is not the output: profile, bash-env, --output)
  -q, --quiet                no informational line on stderr
  -v, --verbose              diagnostics on stderr (never secrets)                CREDBROKER_VERBOSE=1
  -h, --help                 this help
  --version                  print the version

Exit codes
  0 ok · 1 internal error · 2 usage · 3 OIDC token acquisition failed
  4 token rejected by the broker (401), or already exchanged by this job (a fresh token is needed)
  5 denied (403, or STS refused the role) · 6 broker unavailable (network, timeout, 429/5xx after retries)
  7 request rejected by the broker (400/413/415/…) · 8 output file could not be written
`;
var FORMATS = ["env", "github-env", "dotenv", "bash-env", "credential-process", "profile", "json"];
var PROVIDER_ALIASES = {
  github: "github",
  "github-actions": "github",
  gitlab: "gitlab",
  circleci: "circleci",
  buildkite: "buildkite",
  bitbucket: "bitbucket",
  jenkins: "jenkins",
  azure: "azure",
  "azure-devops": "azure",
  "azure-pipelines": "azure",
  terraform: "terraform",
  "terraform-cloud": "terraform",
  tfc: "terraform",
  "hcp-terraform": "terraform",
  generic: "generic"
};
function isLoopback(hostname) {
  const h = hostname.replace(/^\[|\]$/g, "");
  return h === "localhost" || h === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}
function parseBrokerUrl(raw) {
  let u;
  try {
    u = new URL(raw);
  } catch {
    throw usage("--url is not a valid URL");
  }
  if (u.protocol !== "https:" && !(u.protocol === "http:" && isLoopback(u.hostname))) {
    throw usage("--url must use https (plain http is accepted only for loopback addresses)");
  }
  if (u.username || u.password) throw usage("--url must not contain credentials");
  if (u.search || u.hash) throw usage("--url must not contain a query string or fragment");
  return u.href.replace(/\/+$/, "");
}
function intOption(name, raw, min, max) {
  if (raw === void 0 || raw === "") return void 0;
  if (!/^\d+$/.test(String(raw).trim())) throw usage(`${name} must be a whole number`);
  const n = Number(String(raw).trim());
  if (n < min || n > max) throw usage(`${name} must be between ${min} and ${max}`);
  return n;
}
function parseOptions(argv, env) {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: false,
      strict: true,
      options: {
        url: { type: "string" },
        role: { type: "string" },
        duration: { type: "string" },
        audience: { type: "string" },
        region: { type: "string" },
        timeout: { type: "string" },
        retries: { type: "string" },
        "ca-file": { type: "string" },
        provider: { type: "string" },
        "token-env": { type: "string" },
        "token-file": { type: "string" },
        "azure-service-connection-id": { type: "string" },
        format: { type: "string" },
        output: { type: "string" },
        profile: { type: "string" },
        "credentials-file": { type: "string" },
        "cache-dir": { type: "string" },
        "refresh-before": { type: "string" },
        "no-cache": { type: "boolean" },
        status: { type: "boolean" },
        "no-mask": { type: "boolean" },
        quiet: { type: "boolean", short: "q" },
        verbose: { type: "boolean", short: "v" },
        help: { type: "boolean", short: "h" },
        version: { type: "boolean" }
      }
    });
  } catch (e) {
    throw usage(e instanceof Error ? e.message : "invalid arguments");
  }
  const v = parsed.values;
  const pick = (flag, envName) => {
    const fromFlag = v[flag];
    if (typeof fromFlag === "string" && fromFlag !== "") return fromFlag;
    const fromEnv2 = envName ? env[envName] : void 0;
    return fromEnv2 !== void 0 && fromEnv2 !== "" ? fromEnv2 : void 0;
  };
  if (v.help) return { help: true };
  if (v.version) return { version: true };
  const format = pick("format", "CREDBROKER_FORMAT") ?? "env";
  if (!FORMATS.includes(format)) throw usage(`--format must be one of ${FORMATS.join(", ")}`);
  const rawUrl = pick("url", "CREDBROKER_URL");
  if (!rawUrl) throw usage("the broker URL is required: --url or CREDBROKER_URL");
  const url = parseBrokerUrl(rawUrl);
  const role = pick("role", "CREDBROKER_ROLE");
  if (!role) throw usage("the role is required: --role or CREDBROKER_ROLE");
  if (role.length > 256 || /[\u0000-\u001f\u007f]/.test(role)) throw usage("--role is not a valid role name");
  const duration = intOption("--duration", pick("duration", "CREDBROKER_DURATION"), 900, 43200);
  const timeoutS = intOption("--timeout", pick("timeout", "CREDBROKER_TIMEOUT"), 1, 600) ?? 15;
  const retries = intOption("--retries", pick("retries", "CREDBROKER_RETRIES"), 0, 20) ?? 4;
  const refreshBefore = intOption("--refresh-before", pick("refresh-before", "CREDBROKER_REFRESH_BEFORE"), 0, 43200) ?? 600;
  const caFile = pick("ca-file", "CREDBROKER_CA_FILE");
  let ca;
  if (caFile !== void 0) {
    try {
      ca = readFileSync(caFile);
    } catch (e) {
      throw usage(`--ca-file ${caFile}: cannot read it (${e && e.code ? e.code : "error"})`);
    }
    if (!ca.includes("-----BEGIN CERTIFICATE-----")) throw usage(`--ca-file ${caFile}: no PEM certificate in it`);
  }
  checkProxyEnvironment(env);
  const region = pick("region", "CREDBROKER_REGION");
  if (region !== void 0 && !/^[a-z0-9-]{1,32}$/.test(region)) throw usage("--region is not a valid AWS region");
  const profile = pick("profile", "CREDBROKER_PROFILE") ?? "credbroker";
  if (!/^[A-Za-z0-9_.+@:-]{1,64}$/.test(profile)) throw usage("--profile may use letters, digits and _.+@:- only");
  let provider = pick("provider", "CREDBROKER_PROVIDER");
  if (provider !== void 0) {
    const canonical = PROVIDER_ALIASES[provider.toLowerCase()];
    if (!canonical) throw usage(`--provider must be one of ${[...new Set(Object.values(PROVIDER_ALIASES))].join(", ")}`);
    provider = canonical;
  }
  const tokenEnv = pick("token-env", "CREDBROKER_TOKEN_ENV");
  if (tokenEnv !== void 0 && !/^[A-Za-z_][A-Za-z0-9_]*$/.test(tokenEnv)) throw usage("--token-env is not a valid variable name");
  const output = pick("output", "CREDBROKER_OUTPUT");
  if (v.status && format !== "credential-process") throw usage("--status describes the credential-process cache: use it with --format credential-process");
  if (output !== void 0 && (format === "credential-process" || format === "profile")) {
    throw usage(`--output does not apply to --format ${format}`);
  }
  if (format === "github-env" && !output && !env.GITHUB_ENV) throw usage("--format github-env needs $GITHUB_ENV (or --output)");
  if (format === "bash-env" && !output && !env.BASH_ENV) throw usage("--format bash-env needs $BASH_ENV (or --output)");
  const home = os.homedir();
  return {
    url,
    role,
    duration,
    audience: pick("audience", "CREDBROKER_AUDIENCE") ?? url,
    audienceExplicit: pick("audience", "CREDBROKER_AUDIENCE") !== void 0,
    region,
    timeoutMs: timeoutS * 1e3,
    retries,
    ca,
    provider,
    tokenEnv,
    tokenFile: pick("token-file", "CREDBROKER_TOKEN_FILE"),
    azureServiceConnectionId: pick("azure-service-connection-id", "CREDBROKER_AZURE_SERVICE_CONNECTION_ID") ?? (env.AZURESUBSCRIPTION_SERVICE_CONNECTION_ID || void 0),
    format,
    output,
    profile,
    credentialsFile: pick("credentials-file", "CREDBROKER_CREDENTIALS_FILE") ?? (env.AWS_SHARED_CREDENTIALS_FILE || path.join(home, ".aws", "credentials")),
    cacheDir: pick("cache-dir", "CREDBROKER_CACHE_DIR"),
    defaultCacheBase: path.join(env.XDG_CACHE_HOME || path.join(home, ".cache"), "credbroker"),
    refreshBeforeMs: refreshBefore * 1e3,
    noCache: Boolean(v["no-cache"]),
    status: Boolean(v.status),
    noMask: Boolean(v["no-mask"]) || env.CREDBROKER_NO_MASK === "1",
    quiet: Boolean(v.quiet),
    verbose: Boolean(v.verbose) || env.CREDBROKER_VERBOSE === "1"
  };
}

// client/src/providers.mjs
import fs from "node:fs";

// client/src/transport.mjs
import net2 from "node:net";
var http = (
  /** @type {typeof import('node:http')} */
  process.getBuiltinModule("node:http")
);
var MAX_BODY = 256 * 1024;
var NetworkError = class extends Error {
  /**
   * @param {string} message words the sh client uses too ("cannot connect", "timed out after 5s")
   * @param {boolean} maybeDelivered whether the server may have seen the request
   * @param {string} [detail] the low-level cause (ECONNREFUSED, …), for -v
   */
  constructor(message, maybeDelivered, detail) {
    super(message);
    this.maybeDelivered = maybeDelivered;
    this.detail = detail;
  }
};
var proxyEnv = process.env;
var announced = /* @__PURE__ */ new Set();
function announce(url, proxy) {
  if (announced.has(url.origin)) return;
  announced.add(url.origin);
  if (proxy) debug(`${url.origin}: through the proxy ${proxy.display} (${proxy.source})`);
  else if (proxyFor(url, { ...proxyEnv, no_proxy: "", NO_PROXY: "" })) debug(`${url.origin}: direct (NO_PROXY)`);
}
async function tunnelTo(url, proxy, ca) {
  const host = url.hostname.replace(/^\[|\]$/g, "");
  const port = Number(url.port || (url.protocol === "https:" ? 443 : 80));
  let socket;
  try {
    socket = await openTunnel(proxy, host, port);
  } catch (e) {
    if (e && typeof e === "object" && !(e instanceof TunnelError)) Object.assign(e, { viaProxy: true });
    throw e;
  }
  if (url.protocol !== "https:") return socket;
  const tls = process.getBuiltinModule("node:tls");
  return tls.connect({ socket, ...net2.isIP(host) ? {} : { servername: host }, ...ca ? { ca } : {}, ALPNProtocols: ["http/1.1"] });
}
function connectOptions(url) {
  const ca = brokerCa && url.origin === brokerCa.origin ? brokerCa.ca : void 0;
  const proxy = proxyFor(url, proxyEnv);
  announce(url, proxy);
  if (!proxy) return { agent: false, ...ca ? { ca } : {} };
  return {
    agent: void 0,
    /** @type {(opts: object, cb: (err: Error | null, socket?: import('node:net').Socket) => void) => undefined} */
    createConnection: (_opts, cb) => {
      tunnelTo(url, proxy, ca).then(
        (socket) => cb(null, socket),
        (e) => cb(e)
      );
      return void 0;
    }
  };
}
var brokerCa;
function where(url) {
  try {
    const u = new URL(url);
    return `${u.origin}${u.pathname.replace(/\/+$/, "")}`;
  } catch {
    return "the endpoint";
  }
}
var NEVER_SENT = /* @__PURE__ */ new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "EHOSTUNREACH", "ENETUNREACH", "EADDRNOTAVAIL"]);
var RESOLVE = /* @__PURE__ */ new Set(["ENOTFOUND", "EAI_AGAIN"]);
function classify(e) {
  if (e instanceof TunnelError) return new NetworkError(e.message, false, e.detail);
  const code = e && typeof e.code === "string" ? e.code : void 0;
  if (e && e.viaProxy) {
    if (code && RESOLVE.has(code)) return new NetworkError("cannot resolve the proxy host", false, code);
    if (code && NEVER_SENT.has(code)) return new NetworkError("cannot connect to the proxy", false, code);
    return new NetworkError("connection to the proxy lost", false, code ?? (e instanceof Error ? e.message : void 0));
  }
  if (code && RESOLVE.has(code)) return new NetworkError("cannot resolve the host", false, code);
  if (code && NEVER_SENT.has(code)) return new NetworkError("cannot connect", false, code);
  if (code && (/^ERR_TLS|^ERR_SSL|CERT|SELF_SIGNED|UNABLE_TO_VERIFY/.test(code) || code === "EPROTO")) return new NetworkError("TLS error", true, code);
  return new NetworkError("connection lost", true, code ?? (e instanceof Error ? e.message : void 0));
}
async function httpRequest(url, { method = "GET", headers = {}, body, timeoutMs }) {
  const u = new URL(url);
  const mod = u.protocol === "https:" ? process.getBuiltinModule("node:https") : http;
  const allHeaders = { "user-agent": `${PROG}/${VERSION} node/${process.versions.node}`, ...headers };
  if (body !== void 0) allHeaders["content-length"] = String(Buffer.byteLength(body));
  return new Promise((resolve, reject) => {
    let settled = false;
    let responding = false;
    let req;
    const finish = (err, value) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err) {
        req.destroy();
        reject(err);
      } else resolve(value);
    };
    const timer = setTimeout(() => {
      const secs = `${timeoutMs / 1e3}s`;
      finish(new NetworkError(responding ? `timed out after ${secs} reading the response` : `timed out after ${secs}`, true, "timeout"));
    }, timeoutMs);
    req = mod.request(u, { method, headers: allHeaders, ...connectOptions(u) }, (res) => {
      responding = true;
      const chunks = [];
      let size = 0;
      res.on("data", (chunk) => {
        size += chunk.length;
        if (size > MAX_BODY) finish(new NetworkError("response too large", true));
        else chunks.push(chunk);
      });
      res.on("end", () => {
        const h = res.headers;
        finish(void 0, {
          status: res.statusCode ?? 0,
          headers: { get: (name) => {
            const v = h[name.toLowerCase()];
            return Array.isArray(v) ? v.join(", ") : v;
          } },
          text: Buffer.concat(chunks).toString("utf8")
        });
      });
      res.on("error", () => finish(new NetworkError("connection lost while reading the response", true)));
      res.on("aborted", () => finish(new NetworkError("connection lost while reading the response", true)));
    });
    req.on("error", (e) => finish(responding ? new NetworkError("connection lost while reading the response", true) : classify(e)));
    req.end(body);
  });
}

// client/src/retry.mjs
var sleep = (ms) => new Promise((r) => setTimeout(r, ms));
function backoffMs(attempt) {
  const ceiling = Math.min(1e4, 500 * 2 ** attempt);
  return ceiling / 2 + Math.random() * (ceiling / 2);
}
var MAX_RETRY_AFTER_S = 120;
function retryAfterMs(headers) {
  const raw = headers.get("retry-after");
  if (!raw) return void 0;
  if (/^\s*\d+\s*$/.test(raw)) return Number(raw.trim()) * 1e3;
  const at = Date.parse(raw);
  return Number.isNaN(at) ? void 0 : Math.max(0, at - Date.now());
}
var isRetryableStatus = (s) => s === 408 || s === 429 || s >= 500 && s <= 599;
async function withRetries(label, retries, attempt, { retryable = isRetryableStatus, onRetry } = {}) {
  let last;
  for (let i = 0; ; i += 1) {
    let waitMs;
    try {
      const res = await attempt(i);
      if (!retryable(res.status, res)) return res;
      last = res;
      const ra = retryAfterMs(res.headers);
      if (ra !== void 0 && ra > MAX_RETRY_AFTER_S * 1e3) {
        debug(`${label}: HTTP ${res.status} with Retry-After ${Math.round(ra / 1e3)}s, longer than ${MAX_RETRY_AFTER_S}s: giving up`);
        return res;
      }
      waitMs = ra !== void 0 ? ra + Math.random() * 250 : backoffMs(i);
      debug(`${label}: HTTP ${res.status}${ra !== void 0 ? ` (Retry-After ${ra / 1e3}s)` : ""}`);
    } catch (e) {
      if (!(e instanceof NetworkError)) throw e;
      last = e;
      waitMs = backoffMs(i);
      debug(`${label}: ${e.message}${e.detail ? ` (${e.detail})` : ""}`);
    }
    if (i >= retries) {
      if (last instanceof NetworkError) throw last;
      return last;
    }
    debug(`${label}: retry ${i + 1}/${retries} in ${Math.round(waitMs)}ms`);
    await sleep(waitMs);
    if (onRetry) await onRetry(last);
  }
}

// client/src/util.mjs
var parseJson = (text) => {
  try {
    return JSON.parse(text);
  } catch {
    return void 0;
  }
};

// client/src/providers.mjs
var tokenError = (msg) => new ClientError(EXIT.TOKEN, msg);
var JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;
function checkJwt(token, source) {
  const t = typeof token === "string" ? token.trim() : "";
  if (!t) throw tokenError(`${source} is empty`);
  if (!JWT_SHAPE.test(t)) throw tokenError(`${source} does not hold a JWT`);
  redactions.add(t);
  return t;
}
function fromEnvVar(env, name, hint) {
  const value = env[name];
  if (value === void 0 || value === "") throw tokenError(`environment variable ${name} is not set${hint ? `: ${hint}` : ""}`);
  return checkJwt(value, `environment variable ${name}`);
}
function fromFile(file) {
  let fd;
  try {
    fd = fs.openSync(file, "r");
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw tokenError(`token file ${file} is not a regular file`);
    if (st.size > MAX_BODY) throw tokenError(`token file ${file} is too large`);
    return checkJwt(fs.readFileSync(fd, "utf8"), `token file ${file}`);
  } catch (e) {
    if (e instanceof ClientError) throw e;
    throw tokenError(`cannot read token file ${file}: ${e && e.code ? e.code : "error"}`);
  } finally {
    if (fd !== void 0) fs.closeSync(fd);
  }
}
async function fromEndpoint(name, url, init, extract, opts) {
  let res;
  try {
    res = await withRetries(`${name} token endpoint`, opts.retries, () => httpRequest(url, { ...init, timeoutMs: opts.timeoutMs }));
  } catch (e) {
    if (e instanceof NetworkError) throw tokenError(`${name} token endpoint ${where(url)} failed: ${e.message}`);
    throw e;
  }
  if (res.status < 200 || res.status > 299) throw tokenError(`${name} token endpoint ${where(url)} answered HTTP ${res.status}`);
  const body = parseJson(res.text);
  const token = body && typeof body === "object" ? extract(body) : void 0;
  if (typeof token !== "string") throw tokenError(`${name} token endpoint ${where(url)} returned no token`);
  return checkJwt(token, `the ${name} token endpoint's answer`);
}
async function runCommand(cmd, args, timeoutMs, input2) {
  const { spawn } = await import("node:child_process");
  return new Promise((resolve, reject) => {
    let child;
    try {
      child = spawn(cmd, args, { stdio: [input2 === void 0 ? "ignore" : "pipe", "pipe", "pipe"] });
    } catch (e) {
      reject(e);
      return;
    }
    if (input2 !== void 0) {
      child.stdin.on("error", () => {
      });
      child.stdin.end(input2);
    }
    let out = "";
    let errText = "";
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.stdout.on("data", (d) => {
      out += d;
    });
    child.stderr.on("data", (d) => {
      errText = (errText + d).slice(-500);
    });
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on("close", (code, sig) => {
      clearTimeout(timer);
      resolve({ code, signal: sig, out, err: errText });
    });
  });
}
function detectProvider(env) {
  if (env.GITHUB_ACTIONS === "true") return "github";
  if (env.GITLAB_CI === "true") return "gitlab";
  if (env.CIRCLECI === "true") return "circleci";
  if (env.BUILDKITE === "true") return "buildkite";
  if (env.BITBUCKET_BUILD_NUMBER || env.BITBUCKET_STEP_OIDC_TOKEN) return "bitbucket";
  if ((env.TF_BUILD || "").toLowerCase() === "true") return "azure";
  if (env.TFC_WORKLOAD_IDENTITY_TOKEN || env.TFC_RUN_ID) return "terraform";
  if (env.JENKINS_URL) return "jenkins";
  return void 0;
}
function tokenSource(opts, env) {
  const inner = providerTokenSource(opts, env);
  const tracked = {
    ...inner,
    lastToken: void 0,
    get: async () => {
      tracked.lastToken = await inner.get();
      return tracked.lastToken;
    }
  };
  return tracked;
}
function providerTokenSource(opts, env) {
  const name = opts.provider ?? (opts.tokenFile || opts.tokenEnv ? "generic" : detectProvider(env));
  const net3 = { retries: Math.min(opts.retries, 3), timeoutMs: opts.timeoutMs };
  const envOrFile = (defaultEnv, hint) => () => opts.tokenFile ? fromFile(opts.tokenFile) : fromEnvVar(env, opts.tokenEnv ?? defaultEnv, hint);
  const from = (defaultEnv) => opts.tokenFile ? `token file ${opts.tokenFile}` : `environment variable ${opts.tokenEnv ?? defaultEnv}`;
  switch (name) {
    case "github":
      return {
        name,
        canMint: true,
        get: async () => {
          const base = env.ACTIONS_ID_TOKEN_REQUEST_URL;
          const bearer = env.ACTIONS_ID_TOKEN_REQUEST_TOKEN;
          if (!base || !bearer) {
            throw tokenError('ACTIONS_ID_TOKEN_REQUEST_URL/ACTIONS_ID_TOKEN_REQUEST_TOKEN are not set: give the job "permissions: id-token: write"');
          }
          redactions.add(bearer);
          const url = `${base}${base.includes("?") ? "&" : "?"}audience=${encodeURIComponent(opts.audience)}`;
          return fromEndpoint("GitHub", url, { headers: { authorization: `bearer ${bearer}`, accept: "application/json" } }, (b) => b.value, net3);
        }
      };
    case "buildkite":
      return {
        name,
        canMint: true,
        get: async () => {
          const endpoint = (env.BUILDKITE_AGENT_ENDPOINT || "https://agent.buildkite.com/v3").replace(/\/+$/, "");
          const job = env.BUILDKITE_JOB_ID;
          const agentToken = env.BUILDKITE_AGENT_ACCESS_TOKEN;
          if (!job || !agentToken) throw tokenError("BUILDKITE_JOB_ID/BUILDKITE_AGENT_ACCESS_TOKEN are not set");
          redactions.add(agentToken);
          const url = `${endpoint}/jobs/${encodeURIComponent(job)}/oidc/tokens`;
          return fromEndpoint(
            "Buildkite",
            url,
            {
              method: "POST",
              headers: { authorization: `Token ${agentToken}`, "content-type": "application/json", accept: "application/json" },
              // organization_id and pipeline_id are optional claims, present only when asked for:
              // they are the immutable ids a policy should bind on (and the default source identity).
              body: JSON.stringify({ audience: opts.audience, claims: ["organization_id", "pipeline_id"] })
            },
            (b) => b.token,
            net3
          );
        }
      };
    case "azure":
      return {
        name,
        canMint: true,
        get: async () => {
          const base = env.SYSTEM_OIDCREQUESTURI;
          const access = env.SYSTEM_ACCESSTOKEN;
          if (!base) throw tokenError("SYSTEM_OIDCREQUESTURI is not set: run inside an Azure Pipelines job");
          if (!access) throw tokenError("SYSTEM_ACCESSTOKEN is not set: map it into the step with env: SYSTEM_ACCESSTOKEN: $(System.AccessToken)");
          if (!opts.azureServiceConnectionId) throw tokenError("no service connection: set --azure-service-connection-id or CREDBROKER_AZURE_SERVICE_CONNECTION_ID");
          redactions.add(access);
          const sep = base.includes("?") ? "&" : "?";
          const url = `${base}${sep}api-version=7.1&serviceConnectionId=${encodeURIComponent(opts.azureServiceConnectionId)}`;
          return fromEndpoint(
            "Azure",
            url,
            { method: "POST", headers: { authorization: `Bearer ${access}`, "content-type": "application/json", accept: "application/json" }, body: "{}" },
            (b) => b.oidcToken,
            net3
          );
        }
      };
    case "circleci":
      if (!opts.audienceExplicit) {
        return { name, canMint: false, from: "environment variable CIRCLE_OIDC_TOKEN_V2", get: async () => fromEnvVar(env, "CIRCLE_OIDC_TOKEN_V2", "enable OIDC for the project, or set --audience") };
      }
      return {
        name,
        canMint: true,
        get: async () => {
          let r;
          try {
            r = await runCommand("circleci", ["run", "oidc", "get", "--claims", JSON.stringify({ aud: opts.audience })], opts.timeoutMs);
          } catch (e) {
            throw tokenError(`cannot run "circleci run oidc get": ${e && e.code ? e.code : "error"} (the CircleCI CLI is needed for a custom audience)`);
          }
          if (r.code !== 0) throw tokenError(`"circleci run oidc get" failed with exit ${r.code ?? r.signal}: ${clean(r.err, 200)}`);
          return checkJwt(r.out, 'the output of "circleci run oidc get"');
        }
      };
    case "gitlab":
      return { name, canMint: false, from: from("CREDBROKER_ID_TOKEN"), get: async () => envOrFile("CREDBROKER_ID_TOKEN", "declare it under id_tokens: in .gitlab-ci.yml with aud: the broker audience")() };
    case "bitbucket":
      return { name, canMint: false, from: from("BITBUCKET_STEP_OIDC_TOKEN"), get: async () => envOrFile("BITBUCKET_STEP_OIDC_TOKEN", 'set "oidc: true" on the step')() };
    case "terraform":
      return { name, canMint: false, from: from("TFC_WORKLOAD_IDENTITY_TOKEN"), get: async () => envOrFile("TFC_WORKLOAD_IDENTITY_TOKEN", "set the workspace variable TFC_WORKLOAD_IDENTITY_AUDIENCE")() };
    case "jenkins":
      return { name, canMint: false, from: from("CREDBROKER_ID_TOKEN"), get: async () => envOrFile("CREDBROKER_ID_TOKEN", "bind an OpenID Connect id token credential with withCredentials")() };
    case "generic":
      if (!opts.tokenFile && !opts.tokenEnv) throw usage("--provider generic needs --token-file or --token-env");
      return { name, canMint: false, from: from(void 0), get: async () => envOrFile(void 0)() };
    default:
      throw tokenError("no CI provider detected: use --provider, --token-file or --token-env");
  }
}

// client/src/exchange.mjs
var CREDENTIAL_CHARS = /^[\x21-\x7e]{1,4096}$/;
function validateCredentials(body, requestId) {
  const bad = (what) => new ClientError(EXIT.UNAVAILABLE, `the broker answered 200 with ${what}`, { requestId });
  if (!body || typeof body !== "object") throw bad("a body that is not JSON");
  for (const k of ["AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration"]) {
    if (typeof body[k] !== "string" || !CREDENTIAL_CHARS.test(body[k]) || /['"\\]/.test(body[k])) throw bad(`a missing or malformed ${k}`);
  }
  if (Number.isNaN(Date.parse(body.Expiration))) throw bad("an Expiration that is not a date");
  for (const k of ["AccessKeyId", "SecretAccessKey", "SessionToken"]) redactions.add(body[k]);
  const pickStr = (k) => typeof body[k] === "string" ? body[k] : void 0;
  return {
    AccessKeyId: body.AccessKeyId,
    SecretAccessKey: body.SecretAccessKey,
    SessionToken: body.SessionToken,
    Expiration: body.Expiration,
    RoleArn: pickStr("RoleArn"),
    AssumedRoleArn: pickStr("AssumedRoleArn"),
    RoleSessionName: pickStr("RoleSessionName"),
    SourceIdentity: pickStr("SourceIdentity"),
    DurationSeconds: Number.isInteger(body.DurationSeconds) ? body.DurationSeconds : void 0,
    RequestId: pickStr("RequestId") ?? requestId
  };
}
function brokerError(res) {
  const body = parseJson(res.text);
  const e = body && typeof body === "object" && body.error && typeof body.error === "object" ? body.error : {};
  const code = typeof e.code === "string" ? clean(e.code, 60) : void 0;
  const requestId = typeof e.request_id === "string" && clean(e.request_id, 100) || clean(res.headers.get("x-request-id") ?? "", 100) || void 0;
  const message = typeof e.message === "string" ? clean(e.message, 200) : void 0;
  return { code, requestId, message, status: res.status };
}
var NON_TRANSIENT_5XX = /* @__PURE__ */ new Set(["ERR_STS_ACCESS_DENIED", "ERR_STS_REJECTED", "ERR_STS_CREDENTIALS"]);
async function exchange(opts, source, hooks = {}) {
  let token = await source.get();
  debug(`OIDC token obtained from ${source.name}`);
  const url = `${opts.url}/v1/credentials?format=json`;
  const body = JSON.stringify(opts.duration ? { role: opts.role, duration_seconds: opts.duration } : { role: opts.role });
  let usedFresh = false;
  let history = "";
  const post = async () => {
    const sent = token;
    try {
      const res = await httpRequest(url, {
        method: "POST",
        headers: { authorization: `Bearer ${sent}`, "content-type": "application/json", accept: "application/json" },
        body,
        timeoutMs: opts.timeoutMs
      });
      if (res.status !== 503) hooks.onPresented?.(sent);
      return res;
    } catch (e) {
      if (!(e instanceof NetworkError) || e.maybeDelivered) hooks.onPresented?.(sent);
      throw e;
    }
  };
  const retryable = (status, res) => {
    if (!isRetryableStatus(status)) return false;
    if ((status === 500 || status === 502) && NON_TRANSIENT_5XX.has(brokerError(res).code ?? "")) return false;
    return true;
  };
  const onRetry = async (last) => {
    const maybeSpent = last instanceof NetworkError ? last.maybeDelivered : last.status !== 503;
    history = last instanceof NetworkError ? last.message : `HTTP ${last.status}`;
    if (maybeSpent && source.canMint) {
      token = await source.get();
      debug("fresh OIDC token obtained for the retry");
    }
  };
  for (; ; ) {
    let res;
    try {
      res = await withRetries("broker", opts.retries, post, { retryable, onRetry });
    } catch (e) {
      if (e instanceof NetworkError) {
        throw new ClientError(EXIT.UNAVAILABLE, `broker ${where(opts.url)} unavailable after ${opts.retries + 1} attempt(s): ${e.message}`);
      }
      throw e;
    }
    const requestId = res.headers.get("x-request-id") ?? void 0;
    if (res.status === 200) {
      const credentials = validateCredentials(parseJson(res.text), requestId && clean(requestId, 100));
      debug(`credentials issued, request id ${credentials.RequestId ?? "-"}`);
      return credentials;
    }
    const be = brokerError(res);
    const detail = be.message ? `: ${be.message}` : "";
    const meta = { code: be.code, requestId: be.requestId, status: res.status };
    if (res.status === 401) {
      const retryWithFresh = be.code === "ERR_TOKEN_REPLAYED" || be.code === "ERR_TOKEN_EXPIRED";
      if (retryWithFresh && source.canMint && !usedFresh) {
        usedFresh = true;
        debug(`${be.code}: fetching a fresh OIDC token once`);
        token = await source.get();
        continue;
      }
      let hint = "";
      if (retryWithFresh && !source.canMint) {
        hint = `; ${source.name} cannot mint a fresh token from within the job${history ? ` (an earlier attempt failed: ${history})` : ""}; re-run the job`;
      }
      throw new ClientError(EXIT.TOKEN_REJECTED, `the broker rejected the OIDC token${detail}${hint}`, meta);
    }
    if (res.status === 403) throw new ClientError(EXIT.DENIED, `access denied by the broker${detail}`, meta);
    if (res.status === 502 && be.code === "ERR_STS_ACCESS_DENIED") throw new ClientError(EXIT.DENIED, `AWS STS refused to assume the role${detail}`, meta);
    if (res.status === 500 && be.code === "ERR_STS_CREDENTIALS") throw new ClientError(EXIT.UNAVAILABLE, `the broker cannot issue credentials, and retrying will not help${detail}`, meta);
    if (res.status >= 300 && res.status < 400) {
      throw new ClientError(EXIT.REJECTED, `the broker answered a redirect; check --url`, meta);
    }
    if (isRetryableStatus(res.status) && !(res.status === 502 && be.code === "ERR_STS_REJECTED")) {
      const ra = retryAfterMs(res.headers);
      const why = ra !== void 0 && ra > MAX_RETRY_AFTER_S * 1e3 ? ` (asked to retry after ${Math.round(ra / 1e3)}s)` : ` after ${opts.retries + 1} attempt(s)`;
      throw new ClientError(EXIT.UNAVAILABLE, `broker unavailable${why}${detail}`, meta);
    }
    throw new ClientError(EXIT.REJECTED, `the broker rejected the request${detail}`, meta);
  }
}

// client/src/files.mjs
import fs2 from "node:fs";
import path2 from "node:path";
var outputError = (file, e) => new ClientError(EXIT.OUTPUT, `cannot write ${file}: ${e && e.code ? e.code : e instanceof Error ? e.message : "error"}`);
var randomHex = (bytes) => Buffer.from(globalThis.crypto.getRandomValues(new Uint8Array(bytes))).toString("hex");
function writePrivateFile(file, content) {
  const dir = path2.dirname(path2.resolve(file));
  const tmp = path2.join(dir, `.${path2.basename(file)}.${process.pid}.${randomHex(6)}.tmp`);
  try {
    fs2.mkdirSync(dir, { recursive: true, mode: 448 });
    const fd = fs2.openSync(tmp, fs2.constants.O_WRONLY | fs2.constants.O_CREAT | fs2.constants.O_EXCL, 384);
    try {
      fs2.writeFileSync(fd, content);
      fs2.fsyncSync(fd);
    } finally {
      fs2.closeSync(fd);
    }
    fs2.chmodSync(tmp, 384);
    fs2.renameSync(tmp, file);
  } catch (e) {
    try {
      fs2.unlinkSync(tmp);
    } catch {
    }
    throw outputError(file, e);
  }
}
function readIfExists(file) {
  try {
    return fs2.readFileSync(file, "utf8");
  } catch (e) {
    if (e && e.code === "ENOENT") return "";
    throw outputError(file, e);
  }
}
function appendPrivate(file, content) {
  try {
    fs2.appendFileSync(file, content, { mode: 384 });
  } catch (e) {
    throw outputError(file, e);
  }
}

// client/src/output.mjs
function envPairs(c, region) {
  const pairs = [
    ["AWS_ACCESS_KEY_ID", c.AccessKeyId],
    ["AWS_SECRET_ACCESS_KEY", c.SecretAccessKey],
    ["AWS_SESSION_TOKEN", c.SessionToken],
    ["AWS_CREDENTIAL_EXPIRATION", c.Expiration]
  ];
  if (region) pairs.push(["AWS_REGION", region], ["AWS_DEFAULT_REGION", region]);
  return pairs;
}
function upsertIniSection(text, name, entries) {
  const lines = text === "" ? [] : text.replace(/\n$/, "").split("\n");
  const out = [];
  const section = [`[${name}]`, ...entries.map(([k, v]) => `${k} = ${v}`)];
  let inTarget = false;
  let placed = false;
  for (const line of lines) {
    const header = /^\s*\[\s*([^\]]+?)\s*\]\s*$/.exec(line);
    if (header) {
      inTarget = header[1] === name;
      if (inTarget) {
        if (!placed) out.push(...section);
        placed = true;
        continue;
      }
    }
    if (!inTarget) out.push(line);
  }
  if (!placed) {
    if (out.length && out[out.length - 1].trim() !== "") out.push("");
    out.push(...section);
  }
  return `${out.join("\n")}
`;
}

// action/src/main.mjs
var input = (env, name) => {
  const v = (env[`INPUT_${name.replace(/ /g, "_").toUpperCase()}`] ?? "").trim();
  return v === "" ? void 0 : v;
};
var escapeData = (s) => String(s).replace(/%/g, "%25").replace(/\r/g, "%0D").replace(/\n/g, "%0A");
function keyValues(pairs) {
  for (const [k, v] of pairs) {
    if (/[\r\n]/.test(String(v))) throw new ClientError(EXIT.OUTPUT, `refusing to write ${k}: the value has a line break`);
  }
  return pairs.map(([k, v]) => `${k}=${v}
`).join("");
}
var accountOf = (arn) => /^arn:aws[a-z-]*:(?:iam|sts)::(\d{12}):/.exec(arn ?? "")?.[1];
async function run(env = process.env, out = (t) => process.stdout.write(t)) {
  try {
    const output = input(env, "output") ?? "env";
    if (output !== "env" && output !== "profile") throw usage('input "output" must be env or profile');
    const argv = ["--provider", "github", "--format", "json"];
    for (const name of ["url", "role", "duration", "audience", "region", "profile"]) {
      const v = input(env, name);
      if (v !== void 0) argv.push(`--${name}`, v);
    }
    if (!input(env, "url")) throw usage('input "url" is required');
    if (!input(env, "role")) throw usage('input "role" is required');
    const opts = parseOptions(argv, {});
    setVerbose(env.RUNNER_DEBUG === "1");
    for (const name of ["GITHUB_ENV", "GITHUB_OUTPUT"]) if (!env[name]) throw usage(`$${name} is not set: run this as a step of a GitHub Actions job`);
    if (output === "profile" && !env.RUNNER_TEMP) throw usage("$RUNNER_TEMP is not set: run this as a step of a GitHub Actions job");
    const c = await exchange(opts, tokenSource(opts, env));
    out([c.AccessKeyId, c.SecretAccessKey, c.SessionToken].map((v) => `::add-mask::${v}
`).join(""));
    if (output === "env") {
      appendPrivate(env.GITHUB_ENV, keyValues(envPairs(c, opts.region)));
    } else {
      const file = path3.join(env.RUNNER_TEMP, "credbroker", "aws-credentials");
      const entries = [
        ["aws_access_key_id", c.AccessKeyId],
        ["aws_secret_access_key", c.SecretAccessKey],
        ["aws_session_token", c.SessionToken]
      ];
      if (opts.region) entries.push(["region", opts.region]);
      writePrivateFile(file, upsertIniSection(readIfExists(file), opts.profile, entries));
      const vars = [
        ["AWS_SHARED_CREDENTIALS_FILE", file],
        ["AWS_PROFILE", opts.profile]
      ];
      if (opts.region) vars.push(["AWS_REGION", opts.region], ["AWS_DEFAULT_REGION", opts.region]);
      appendPrivate(env.GITHUB_ENV, keyValues(vars));
    }
    const outputs = [
      ["aws-account-id", accountOf(c.RoleArn) ?? accountOf(c.AssumedRoleArn) ?? ""],
      ["role-arn", c.RoleArn ?? ""],
      ["expiration", c.Expiration]
    ];
    appendPrivate(env.GITHUB_OUTPUT, keyValues(outputs));
    out(`credbroker: credentials${c.AssumedRoleArn ? ` for ${clean(c.AssumedRoleArn, 300)}` : ""} expire at ${c.Expiration} (${output === "env" ? "in the environment of the next steps" : `profile ${opts.profile}`})
`);
    return EXIT.OK;
  } catch (e) {
    const message = e instanceof ClientError ? describeError(e).replace(" (see --help)", "") : `internal error: ${clean(e instanceof Error ? `${e.name}: ${e.message}` : "unknown", 300)}`;
    out(`::error title=credbroker::${escapeData(message)}
`);
    return e instanceof ClientError ? e.exitCode : EXIT.INTERNAL;
  }
}
run().then((code) => {
  process.exitCode = code;
});
export {
  run
};
