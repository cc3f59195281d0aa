// The broker's own TLS (server.tls): the certificate and key are read from files at start, and
// again on SIGHUP or when either file changes (cert-manager, a mounted Kubernetes secret and
// certbot all replace files). A reload swaps the secure context of the running server: new
// connections get the new certificate, connections already open keep theirs and are not dropped.
// A pair that does not load (unreadable, not PEM, key not matching the certificate) is refused and
// the current one stays in service, loudly.
import { readFileSync, watch, type FSWatcher } from 'node:fs';
import path from 'node:path';
import { createSecureContext, type SecureContextOptions } from 'node:tls';
import { X509Certificate } from 'node:crypto';

export interface TlsSettings {
  cert_file: string;
  key_file: string;
  min_version: 'TLSv1.2' | 'TLSv1.3';
  /** CA certificates that must have signed the client's certificate (mutual TLS), if any. */
  client_ca_file?: string | undefined;
}

export class TlsConfigError extends Error {
  override readonly name = 'TlsConfigError';
}

export interface LoadedTls {
  options: SecureContextOptions & { minVersion: 'TLSv1.2' | 'TLSv1.3' };
  /** Of the leaf certificate: what the logs show about a (re)load. */
  fingerprint256: string;
  subject: string;
  validTo: string;
}

const read = (file: string, what: string): Buffer => {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new TlsConfigError(`cannot read the TLS ${what} ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
};

/** Reads and checks the files; throws TlsConfigError naming the file and the problem. */
export function loadTls(s: TlsSettings): LoadedTls {
  const cert = read(s.cert_file, 'certificate');
  const key = read(s.key_file, 'key');
  const ca = s.client_ca_file ? read(s.client_ca_file, 'client CA') : undefined;
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(cert);
  } catch {
    throw new TlsConfigError(`${s.cert_file} is not a PEM certificate`);
  }
  const options = { cert, key, minVersion: s.min_version, ...(ca ? { ca } : {}) };
  try {
    createSecureContext(options); // the key must match the certificate, the CA must parse
  } catch (err) {
    throw new TlsConfigError(`the TLS certificate ${s.cert_file} and key ${s.key_file} do not load together: ${(err as Error).message}`);
  }
  return { options, fingerprint256: leaf.fingerprint256, subject: leaf.subject.replace(/\n/g, ', '), validTo: leaf.validTo };
}

/** Calls `onChange` (debounced) when any of the files is written or replaced; stop() ends it. */
export function watchFiles(files: string[], onChange: () => void, debounceMs = 250): { stop(): void } {
  let timer: NodeJS.Timeout | undefined;
  const watchers: FSWatcher[] = [];
  const names = new Map<string, Set<string>>();
  for (const f of files) {
    const dir = path.dirname(path.resolve(f));
    if (!names.has(dir)) names.set(dir, new Set());
    names.get(dir)!.add(path.basename(f));
  }
  for (const [dir, wanted] of names) {
    try {
      // The directory, not the file: replacing a file (rename, Kubernetes' ..data symlink swap) is a change too.
      const w = watch(dir, (_event, name) => {
        if (name !== null && !wanted.has(String(name)) && !String(name).startsWith('..')) return;
        clearTimeout(timer);
        timer = setTimeout(onChange, debounceMs);
      });
      w.unref();
      watchers.push(w);
    } catch {
      /* not watchable (e.g. gone): SIGHUP still reloads */
    }
  }
  return {
    stop() {
      clearTimeout(timer);
      for (const w of watchers) w.close();
    },
  };
}
