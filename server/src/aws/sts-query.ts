// AssumeRole on the hot path without the full SDK client: the exchange is one STS call per
// request, and the SDK's middleware stack, schema serde and XML parser were about a third of the
// broker's CPU per exchange. What stays the SDK's own: the credential provider chain (with
// refresh), endpoint resolution (regions, partitions, FIPS, dual-stack), and SigV4 signing
// (@smithy/signature-v4 over node:crypto — no crypto of ours). What is ours: a form-encoded Query
// request, a strict reading of the XML answer, and retries with full jitter like the SDK's
// standard mode (throttling, 5xx, network errors and timeouts; never a refusal).
import http from 'node:http';
import https from 'node:https';
import { createHash, createHmac, type Hash, type Hmac } from 'node:crypto';
import { SignatureV4 } from '@smithy/signature-v4';
import type { AwsCredentialIdentity, Provider, SourceData } from '@smithy/types';

export interface QueryResponse {
  status: number;
  body: string;
  /** Server time from the Date header (clock-skew correction). */
  date: string | undefined;
}

/** An STS error, shaped like the SDK's (name, $metadata.httpStatusCode) so one mapping serves both. */
export class StsServiceError extends Error {
  override readonly name: string;
  readonly $metadata: { httpStatusCode: number | undefined };
  constructor(code: string, status: number | undefined, message: string) {
    super(message);
    this.name = code;
    this.$metadata = { httpStatusCode: status };
  }
}

/** node:crypto's SHA-256 and HMAC-SHA256 in the shape @smithy/signature-v4 asks for. */
const bytes = (data: SourceData): string | Uint8Array =>
  typeof data === 'string' ? data : ArrayBuffer.isView(data) ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : new Uint8Array(data);

export class NodeSha256 {
  private readonly hash: Hash | Hmac;
  constructor(secret?: SourceData) {
    this.hash = secret === undefined ? createHash('sha256') : createHmac('sha256', bytes(secret));
  }
  update(data: SourceData): void {
    this.hash.update(bytes(data));
  }
  digest(): Promise<Uint8Array> {
    return Promise.resolve(new Uint8Array(this.hash.digest()));
  }
  reset(): void {
    // One instance per digest: the signer never reuses one.
  }
}

const XML_ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

/** Text of an XML element's content: entities decoded; anything with markup inside is refused. */
function xmlText(raw: string): string | undefined {
  if (raw.includes('<')) return undefined;
  return raw.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|[a-z]+);/g, (m, e: string) => {
    if (e.startsWith('#x')) return String.fromCodePoint(Number.parseInt(e.slice(2), 16));
    if (e.startsWith('#')) return String.fromCodePoint(Number.parseInt(e.slice(1), 10));
    return XML_ENTITIES[e] ?? m;
  });
}

/** The content of `<tag>…</tag>` when it occurs exactly once in `xml`. */
export function singleElement(xml: string, tag: string): string | undefined {
  const re = new RegExp(`<${tag}(?:\\s[^>]*)?>([\\s\\S]*?)</${tag}>`, 'g');
  const first = re.exec(xml);
  if (!first || re.exec(xml)) return undefined;
  return first[1];
}

export interface AssumeRoleResult {
  accessKeyId: string | undefined;
  secretAccessKey: string | undefined;
  sessionToken: string | undefined;
  expiration: Date | undefined;
  assumedRoleArn: string | undefined;
  sourceIdentity: string | undefined;
}

/** Reads an AssumeRoleResponse strictly: each field once, inside its parent, entities decoded. */
export function parseAssumeRoleResponse(xml: string): AssumeRoleResult {
  const result = /^\s*(?:<\?xml[^>]*\?>\s*)?<AssumeRoleResponse[\s>]/.test(xml) ? singleElement(xml, 'AssumeRoleResult') : undefined;
  const creds = result === undefined ? undefined : singleElement(result, 'Credentials');
  const user = result === undefined ? undefined : singleElement(result, 'AssumedRoleUser');
  const field = (scope: string | undefined, tag: string) => {
    const raw = scope === undefined ? undefined : singleElement(scope, tag);
    const text = raw === undefined ? undefined : xmlText(raw.trim());
    return text === '' ? undefined : text;
  };
  const expiration = field(creds, 'Expiration');
  const when = expiration === undefined ? undefined : new Date(expiration);
  return {
    accessKeyId: field(creds, 'AccessKeyId'),
    secretAccessKey: field(creds, 'SecretAccessKey'),
    sessionToken: field(creds, 'SessionToken'),
    expiration: when && !Number.isNaN(when.getTime()) ? when : undefined,
    assumedRoleArn: field(user, 'Arn'),
    sourceIdentity: result === undefined ? undefined : field(result, 'SourceIdentity'),
  };
}

/** Reads an `<ErrorResponse>`: STS's error code and message, or undefined when the body is not one. */
export function parseErrorResponse(xml: string): { code: string; message: string } | undefined {
  const error = singleElement(xml, 'Error');
  const code = error === undefined ? undefined : singleElement(error, 'Code');
  if (code === undefined) return undefined;
  const message = singleElement(error!, 'Message');
  return { code: xmlText(code.trim()) ?? 'UnknownError', message: (message && xmlText(message.trim())) ?? '' };
}

/** application/x-www-form-urlencoded as the AWS Query protocol wants it (RFC 3986 unreserved kept). */
const formEncode = (v: string): string => encodeURIComponent(v).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

export function queryBody(params: Array<[string, string | number]>): string {
  return params.map(([k, v]) => `${formEncode(k)}=${formEncode(String(v))}`).join('&');
}

const THROTTLING = new Set(['Throttling', 'ThrottlingException', 'RequestLimitExceeded', 'TooManyRequestsException', 'SlowDown', 'RequestThrottled', 'RequestThrottledException']);
const CLOCK_SKEW = new Set(['RequestTimeTooSkewed', 'RequestExpired', 'InvalidSignatureException', 'SignatureDoesNotMatch', 'AuthFailure', 'RequestInTheFuture']);
const TRANSIENT_STATUS = new Set([500, 502, 503, 504]);
// ERR_PROXY_TUNNEL: the egress proxy refused or could not open the tunnel (its 502/503 pass; a 407 fails every attempt alike).
const NETWORK = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNABORTED', 'EHOSTUNREACH', 'ENETUNREACH', 'ERR_PROXY_TUNNEL']);
/** Full-jitter backoff caps, as the SDK's standard retry mode: 100 ms base, 500 ms when throttled, 20 s max. */
const BASE_DELAY_MS = 100;
const THROTTLE_BASE_DELAY_MS = 500;
const MAX_DELAY_MS = 20_000;

export interface StsQueryOptions {
  region: string;
  /** Resolved endpoint (the SDK's endpoint rules, or the configured override). */
  endpoint: URL;
  credentials: Provider<AwsCredentialIdentity>;
  maxAttempts: number;
  /** Per attempt: to connect and to be answered. */
  httpTimeoutMs: number;
  /** The keep-alive pool for the endpoint: direct, or through the egress proxy. */
  agent: http.Agent;
  /** Test seam for the backoff (default: setTimeout). */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

class TimeoutError extends Error {
  override readonly name = 'TimeoutError';
}

const sleepFor = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason as Error);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason as Error);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });

export class StsQueryClient {
  private readonly signer: SignatureV4;
  /** Server time minus ours, learned from a clock-skew refusal (as the SDK does). */
  private clockOffsetMs = 0;

  get endpoint(): URL {
    return this.opts.endpoint;
  }

  constructor(private readonly opts: StsQueryOptions) {
    this.signer = new SignatureV4({ service: 'sts', region: opts.region, credentials: opts.credentials, sha256: NodeSha256, uriEscapePath: true, applyChecksum: true });
  }

  /** One STS Query action with retries; resolves with the raw XML of a 200 answer. */
  async call(params: Array<[string, string | number]>, signal?: AbortSignal): Promise<string> {
    const body = queryBody(params);
    let skewRetried = false;
    for (let attempt = 1; ; attempt++) {
      let retryable: { throttled: boolean } | undefined;
      let failure: Error;
      try {
        const res = await this.send(body, signal);
        if (res.status === 200) return res.body;
        const parsed = parseErrorResponse(res.body);
        failure = new StsServiceError(parsed?.code ?? `Http${res.status}Error`, res.status, parsed?.message ?? `HTTP ${res.status}`);
        if (parsed && CLOCK_SKEW.has(parsed.code) && !skewRetried && this.learnClockOffset(res.date)) {
          skewRetried = true;
          attempt--; // a corrected clock is a new first attempt, not a retry
          continue;
        }
        if ((parsed && THROTTLING.has(parsed.code)) || res.status === 429) retryable = { throttled: true };
        else if (TRANSIENT_STATUS.has(res.status)) retryable = { throttled: false };
      } catch (err) {
        if (signal?.aborted) throw err;
        failure = err as Error;
        const code = (err as NodeJS.ErrnoException).code;
        if (err instanceof TimeoutError || (code !== undefined && NETWORK.has(code))) retryable = { throttled: false };
      }
      if (!retryable || attempt >= this.opts.maxAttempts) throw failure;
      const cap = Math.min(MAX_DELAY_MS, (retryable.throttled ? THROTTLE_BASE_DELAY_MS : BASE_DELAY_MS) * 2 ** (attempt - 1));
      await (this.opts.sleep ?? sleepFor)(Math.random() * cap, signal);
    }
  }

  private learnClockOffset(serverDate: string | undefined): boolean {
    const server = serverDate === undefined ? NaN : Date.parse(serverDate);
    if (Number.isNaN(server)) return false;
    const offset = server - Date.now();
    if (Math.abs(offset - this.clockOffsetMs) < 30_000) return false; // not a skew we can fix
    this.clockOffsetMs = offset;
    return true;
  }

  private async send(body: string, signal: AbortSignal | undefined): Promise<QueryResponse> {
    const url = this.opts.endpoint;
    const path = url.pathname || '/';
    const unsigned = {
      method: 'POST',
      protocol: url.protocol,
      hostname: url.hostname,
      ...(url.port ? { port: Number(url.port) } : {}),
      path,
      query: {},
      headers: { host: url.host, 'content-type': 'application/x-www-form-urlencoded', 'content-length': String(Buffer.byteLength(body)) },
      body,
    };
    const signed = await this.signer.sign(unsigned, { signingDate: new Date(Date.now() + this.clockOffsetMs) });
    const transport = url.protocol === 'https:' ? https : http;
    const agent = this.opts.agent;
    return new Promise<QueryResponse>((resolve, reject) => {
      const req = transport.request(
        { method: 'POST', protocol: url.protocol, hostname: url.hostname, port: url.port || undefined, path, agent, headers: signed.headers, signal },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (d: Buffer) => {
            size += d.length;
            if (size > 1024 * 1024) req.destroy(new Error('STS answer larger than 1 MiB'));
            else chunks.push(d);
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), date: res.headers.date }));
          res.on('error', reject);
        },
      );
      // One bound for the whole attempt (connect + answer), like the SDK client's http_timeout_ms.
      const timer = setTimeout(() => req.destroy(new TimeoutError(`no answer from STS within ${this.opts.httpTimeoutMs} ms`)), this.opts.httpTimeoutMs);
      req.on('close', () => clearTimeout(timer));
      req.on('error', reject);
      req.end(body);
    });
  }
}
