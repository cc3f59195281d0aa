// Fetch a small JSON document from an issuer: timeout, no redirects (fail closed), size cap
// enforced while reading (a lying Content-Length cannot bypass it). The request goes through the
// broker's network (proxy, CA bundles); a failure names the host and, for TLS, the reason.
import type { Network } from '../net/network.js';

export class FetchError extends Error {
  override readonly name = 'FetchError';
}

export async function fetchJson(url: string, opts: { timeoutMs: number; maxBytes: number; network: Pick<Network, 'fetch' | 'describeError'> }): Promise<unknown> {
  let res: Response;
  try {
    res = await opts.network.fetch(url, {
      redirect: 'error',
      headers: { accept: 'application/json' },
      signal: AbortSignal.timeout(opts.timeoutMs),
    });
  } catch (err) {
    const timedOut = err instanceof Error && (err.name === 'TimeoutError' || (err.cause as Error | undefined)?.name === 'TimeoutError');
    const why = timedOut ? `no answer within ${opts.timeoutMs} ms` : opts.network.describeError(err, url);
    throw new FetchError(`GET ${url}: ${why}`, { cause: err });
  }
  if (!res.ok) {
    await res.body?.cancel();
    throw new FetchError(`GET ${url}: HTTP ${res.status}`);
  }
  const declared = Number(res.headers.get('content-length') ?? NaN);
  if (Number.isFinite(declared) && declared > opts.maxBytes) {
    await res.body?.cancel();
    throw new FetchError(`GET ${url}: response of ${declared} bytes exceeds ${opts.maxBytes}`);
  }
  const chunks: Uint8Array[] = [];
  let total = 0;
  if (res.body) {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      total += chunk.byteLength;
      if (total > opts.maxBytes) throw new FetchError(`GET ${url}: response exceeds ${opts.maxBytes} bytes`);
      chunks.push(chunk);
    }
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  } catch {
    throw new FetchError(`GET ${url}: response is not JSON`);
  }
}
