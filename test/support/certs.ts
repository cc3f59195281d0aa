// Certificates made at test time with the openssl command (a CA, certificates it signs for
// 127.0.0.1/localhost, client certificates), so TLS tests run real handshakes with nothing checked in.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { X509Certificate } from 'node:crypto';

export interface Ca {
  name: string;
  cert: string;
  key: string;
}
export interface Issued {
  cert: string;
  key: string;
  /** SHA-256 fingerprint, as node:tls reports it (AA:BB:…). */
  fingerprint256: string;
}

const dir = mkdtempSync(path.join(tmpdir(), 'credbroker-certs-'));
let serial = 0;

function openssl(args: string[]): void {
  try {
    execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: Buffer };
    if (e.code === 'ENOENT') throw new Error('these tests need the openssl command (apt-get install openssl)');
    throw new Error(`openssl ${args[0]} failed: ${e.stderr?.toString() ?? e.message}`);
  }
}

const ecKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

export function makeCa(name: string): Ca {
  const base = path.join(dir, name);
  openssl(['req', '-x509', ...ecKey, '-keyout', `${base}.key`, '-out', `${base}.crt`, '-days', '2', '-subj', `/CN=${name}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  return { name, cert: `${base}.crt`, key: `${base}.key` };
}

/**
 * A certificate signed by `ca`: for a server (127.0.0.1 and localhost, or `names`) or a client.
 * `expired`: valid until the moment it was made (notAfter before now), for expiry tests.
 */
export function issue(ca: Ca, name: string, usage: 'server' | 'client' = 'server', opts: { names?: string[]; expired?: boolean } = {}): Issued {
  const base = path.join(dir, `${name}-${++serial}`);
  const ext = `${base}.ext`;
  const names = (opts.names ?? ['127.0.0.1', 'localhost']).map((n) => (/^[\d.]+$|:/.test(n) ? `IP:${n}` : `DNS:${n}`)).join(',');
  writeFileSync(
    ext,
    usage === 'server'
      ? `subjectAltName=${names}\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n`
      : 'extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n',
  );
  openssl(['req', ...ecKey, '-keyout', `${base}.key`, '-out', `${base}.csr`, '-subj', `/CN=${name}`]);
  openssl(['x509', '-req', '-in', `${base}.csr`, '-CA', ca.cert, '-CAkey', ca.key, '-set_serial', String(1000 + serial), '-days', opts.expired ? '-1' : '1', '-out', `${base}.crt`, '-extfile', ext]);
  return { cert: `${base}.crt`, key: `${base}.key`, fingerprint256: new X509Certificate(readFileSync(`${base}.crt`)).fingerprint256 };
}
