// Fetch a small JSON document from an issuer: timeout, no redirects (fail closed), size cap
// enforced while reading (a lying Content-Length cannot bypass it).

export class FetchError extends Error {
  override readonly name = 'FetchError';
}

export async function fetchJson(url: string, opts: { timeoutMs: number; maxBytes: number; fetchImpl?: typeof fetch }): Promise<unknown> {
  const doFetch = opts.fetchImpl ?? fetch;
  let res: Response;
  try {
    res = await doFetch(url, {
      redirect: 'error',
      headers: { accept: 'application/json' },
      signal: AbortSignal.timeout(opts.timeoutMs),
    });
  } catch (err) {
    throw new FetchError(`GET ${url}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
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
