// A PEM CA bundle from a file, read and checked when the config is compiled (so `config validate`
// and start-up refuse a file that is missing, empty or not certificates), then handed to TLS as text.
import { readFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';

const PEM_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

export interface CaBundle {
  certs: string[];
  /** Not problems: an expired certificate in a bundle is harmless, but worth a lint warning. */
  warnings: string[];
}

/** The certificates of a PEM file, or why it cannot be used. */
export function readCaFile(file: string, now: Date = new Date()): CaBundle | string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    return `cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`;
  }
  const blocks = text.match(PEM_BLOCK) ?? [];
  if (blocks.length === 0) return `${file}: no PEM certificate ("-----BEGIN CERTIFICATE-----") in it`;
  const warnings: string[] = [];
  for (const [i, block] of blocks.entries()) {
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(block);
    } catch {
      return `${file}: certificate ${i + 1} of ${blocks.length} is not a valid X.509 certificate`;
    }
    const subject = cert.subject.replace(/\n/g, ', ');
    if (new Date(cert.validTo).getTime() < now.getTime()) warnings.push(`${file}: certificate ${i + 1} (${subject}) expired on ${cert.validTo}`);
    if (!cert.ca) warnings.push(`${file}: certificate ${i + 1} (${subject}) is not a CA certificate; it can only be trusted as itself`);
  }
  return { certs: blocks, warnings };
}
