// What went wrong on the way to a host, in words an operator can act on: the host, and for TLS the
// reason (unknown CA, expired, name mismatch), never a bare "fetch failed". undici wraps the cause
// of a failed fetch (TypeError "fetch failed" → cause), node:https reports it directly; both are
// read here. Nothing of a request (headers, proxy credentials) is ever part of the text.

/** Errors that say the proxy, not the target, failed; thrown by the node:http proxy agent. */
export class ProxyTunnelError extends Error {
  override readonly name = 'ProxyTunnelError';
  readonly code = 'ERR_PROXY_TUNNEL';
  constructor(
    readonly target: string,
    readonly status: number,
  ) {
    super(`the proxy refused the tunnel to ${target}: HTTP ${status}${status === 407 || status === 401 ? ' (proxy authentication required: check the credentials in the proxy URL)' : ''}`);
  }
}

const TLS_REASONS: Record<string, string> = {
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'is signed by an unknown certificate authority',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'is signed by an unknown certificate authority',
  UNABLE_TO_GET_ISSUER_CERT: 'is signed by an unknown certificate authority',
  SELF_SIGNED_CERT_IN_CHAIN: 'chains to a certificate authority that is not trusted',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'is self-signed and not trusted',
  CERT_HAS_EXPIRED: 'has expired',
  CERT_NOT_YET_VALID: 'is not valid yet',
  ERR_TLS_CERT_ALTNAME_INVALID: 'does not name this host',
  CERT_REVOKED: 'has been revoked',
  CERT_SIGNATURE_FAILURE: 'has a bad signature',
  CERT_UNTRUSTED: 'is not trusted',
  INVALID_CA: 'is signed by an invalid certificate authority',
};

const TLS_HINTS: Record<string, string> = {
  'is signed by an unknown certificate authority': 'add the CA that signed it with ca_file',
  'chains to a certificate authority that is not trusted': 'add that CA with ca_file',
  'is self-signed and not trusted': 'add it with ca_file',
};

const NETWORK_REASONS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  ENOTFOUND: 'cannot resolve the host',
  EAI_AGAIN: 'cannot resolve the host (temporary DNS failure)',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ETIMEDOUT: 'timed out connecting',
  UND_ERR_CONNECT_TIMEOUT: 'timed out connecting',
  UND_ERR_SOCKET: 'connection lost',
  EPIPE: 'connection lost',
  EPROTO: 'TLS protocol error',
};

/** The chain of causes, outermost first (bounded: a cycle must not hang the broker). */
function causes(err: unknown): unknown[] {
  const out: unknown[] = [];
  let e: unknown = err;
  for (let i = 0; i < 8 && e !== undefined && e !== null; i++) {
    out.push(e);
    e = (e as { cause?: unknown }).cause;
  }
  return out;
}

const codeOf = (e: unknown): string | undefined => {
  const c = (e as { code?: unknown } | null)?.code;
  return typeof c === 'string' ? c : undefined;
};

/** host:port of a URL, for messages. */
export function hostPort(url: string | URL): string {
  try {
    const u = typeof url === 'string' ? new URL(url) : url;
    return `${u.hostname}:${u.port || (u.protocol === 'https:' ? '443' : '80')}`;
  } catch {
    return 'the host';
  }
}

/** The TLS reason code in an error's causes, if the failure was a certificate check. */
export function tlsCode(err: unknown): string | undefined {
  return causes(err).map(codeOf).find((c) => c !== undefined && c in TLS_REASONS);
}

/**
 * One line: what failed reaching `url`. TLS: "TLS: the certificate of HOST:PORT has expired
 * (CERT_HAS_EXPIRED)". A proxy that refused the tunnel says so with its status. Otherwise the
 * network reason, or the innermost message.
 */
export function describeNetworkError(err: unknown, url: string | URL): string {
  const target = hostPort(url);
  const chain = causes(err);
  const tls = tlsCode(err);
  if (tls) {
    const reason = TLS_REASONS[tls]!;
    const hint = TLS_HINTS[reason];
    return `TLS: the certificate of ${target} ${reason} (${tls})${hint ? `: ${hint}` : ''}`;
  }
  const tunnel = chain.find((e): e is ProxyTunnelError => e instanceof ProxyTunnelError);
  if (tunnel) return tunnel.message;
  // undici: "Proxy response (407) !== 200 when HTTP Tunneling"
  for (const e of chain) {
    const m = e instanceof Error ? /^Proxy response \((\d{3})\) !== 200/.exec(e.message) : null;
    if (m) return new ProxyTunnelError(target, Number(m[1])).message;
  }
  for (const e of chain) {
    const code = codeOf(e);
    if (code && NETWORK_REASONS[code]) return `${NETWORK_REASONS[code]} (${target}, ${code})`;
  }
  const innermost = chain[chain.length - 1];
  const message = innermost instanceof Error ? innermost.message : String(innermost);
  return `${message.slice(0, 300)} (${target})`;
}
