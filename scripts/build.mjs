#!/usr/bin/env node
// Builds the broker into dist/ (tsc + the OpenAPI documents), unless nothing it is built from has
// changed since the last build: a content hash of the inputs is kept in dist/.build-stamp, so a
// second `npm start` is ready in about a second instead of re-running the compiler.
//   node scripts/build.mjs           build if stale
//   node scripts/build.mjs --force   always build
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const stampFile = path.join(root, 'dist', '.build-stamp');

function* files(dir) {
  for (const name of readdirSync(dir).sort()) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) yield* files(p);
    else yield p;
  }
}

function inputsHash() {
  const h = createHash('sha256');
  const inputs = [...files(path.join(root, 'server')), ...['tsconfig.json', 'tsconfig.build.json', 'package-lock.json'].map((f) => path.join(root, f))];
  for (const f of inputs) h.update(path.relative(root, f)).update('\0').update(readFileSync(f)).update('\0');
  h.update(process.version.split('.')[0]); // a different Node major may resolve types differently
  return h.digest('hex');
}

export function build({ force = false, quiet = false } = {}) {
  const want = inputsHash();
  if (!force && existsSync(stampFile) && readFileSync(stampFile, 'utf8') === want) return false;
  if (!quiet) process.stderr.write('building dist/ (TypeScript)…\n');
  const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  const r = spawnSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.build.json')], { stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
  for (const doc of readdirSync(path.join(root, 'server')).filter((f) => f.endsWith('.json'))) {
    mkdirSync(path.join(root, 'dist', 'server'), { recursive: true });
    copyFileSync(path.join(root, 'server', doc), path.join(root, 'dist', 'server', doc));
  }
  writeFileSync(stampFile, want);
  return true;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) build({ force: process.argv.includes('--force') });
