#!/usr/bin/env node
// `npm run release:client [-- --out DIR]`: the files a release publishes, and their checksums.
//   credbroker-client.mjs    the Node client (one file, Node >= 20 built-ins)
//   credbroker-client.sh     the POSIX sh + curl client
//   credbroker-action.mjs    the GitHub Action's entry point (action.yml runs it)
//   SHA256SUMS               `sha256sum -c` format
// The bundles must be what their sources build to (else: npm run build:client, and commit), so a
// release is always reproducible from its tag. The checksums are verified by reading the files back.
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { BUNDLES, buildBundles } from './build-client.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({ options: { out: { type: 'string', default: path.join(root, 'dist', 'release') } } });
const out = path.resolve(values.out);
const version = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')).version;

const built = await buildBundles();
const stale = built.filter((b) => readFileSync(path.join(root, b.out), 'utf8') !== b.text).map((b) => b.out);
if (stale.length > 0) {
  console.error(`release: ${stale.join(', ')} differ(s) from the sources: run npm run build:client and commit first`);
  process.exit(1);
}

const FILES = [
  ['client/credbroker-client.mjs', 'credbroker-client.mjs', 0o755],
  ['client/credbroker-client.sh', 'credbroker-client.sh', 0o755],
  [BUNDLES[1].out, 'credbroker-action.mjs', 0o644],
];
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
const sha = (file) => createHash('sha256').update(readFileSync(file)).digest('hex');
const sums = [];
for (const [from, name, mode] of FILES) {
  copyFileSync(path.join(root, from), path.join(out, name));
  chmodSync(path.join(out, name), mode);
  sums.push([sha(path.join(root, from)), name]);
}
writeFileSync(path.join(out, 'SHA256SUMS'), sums.map(([h, n]) => `${h}  ${n}\n`).join(''));

// Read back what was written: a copy that differs from its source, or a wrong sum, fails the release.
for (const [h, n] of sums) {
  if (sha(path.join(out, n)) !== h) {
    console.error(`release: checksum of ${n} does not verify`);
    process.exit(1);
  }
}
console.log(`credbroker ${version}: ${path.relative(process.cwd(), out) || '.'}`);
for (const [h, n] of sums) console.log(`  ${h}  ${n}`);
