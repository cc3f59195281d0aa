#!/usr/bin/env node
// Builds the broker into dist/ (tsc + the OpenAPI documents + the console's browser assets),
// unless nothing it is built from has changed since the last build: a content hash of the inputs
// is kept in dist/.build-stamp, so a second `npm start` is ready in about a second instead of
// re-running the compiler.
//   node scripts/build.mjs             build if stale
//   node scripts/build.mjs --force     always build
//   node scripts/build.mjs --prepare   npm's `prepare` (after `npm ci`, `npm pack`, `npm install -g .`):
//                                      build if stale; nothing when the dev dependencies are absent
//                                      (`npm ci --omit=dev` installs a built copy's dependencies)
// Two builds at once (`npm start` while `npx credbroker` prepares) take turns: the second finds
// the first one's stamp and does nothing.
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
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
  const inputs = [...files(path.join(root, 'server')), ...files(path.join(root, 'console')), ...['tsconfig.json', 'tsconfig.build.json', 'package-lock.json'].map((f) => path.join(root, f))];
  for (const f of inputs) h.update(path.relative(root, f)).update('\0').update(readFileSync(f)).update('\0');
  h.update(process.version.split('.')[0]); // a different Node major may resolve types differently
  return h.digest('hex');
}

/** Runs fn holding dist/.build-lock (a directory: mkdir is atomic); a lock older than 10 minutes is stale. */
function withLock(fn) {
  const lock = path.join(root, 'dist', '.build-lock');
  mkdirSync(path.dirname(lock), { recursive: true });
  const wait = new Int32Array(new SharedArrayBuffer(4));
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch (err) {
      if (err.code !== 'EEXIST') throw err;
      try {
        if (Date.now() - statSync(lock).mtimeMs > 10 * 60_000) rmSync(lock, { recursive: true, force: true });
      } catch {
        // released meanwhile
      }
      Atomics.wait(wait, 0, 0, 200);
    }
  }
  try {
    return fn();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

export function build({ force = false, quiet = false } = {}) {
  const fresh = () => existsSync(stampFile) && readFileSync(stampFile, 'utf8') === inputsHash();
  if (!force && fresh()) return false;
  return withLock(() => buildUnlocked({ force, quiet }));
}

function buildUnlocked({ force, quiet }) {
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
  buildConsoleAssets();
  writeFileSync(stampFile, want);
  return true;
}

/**
 * The console's script and stylesheet (console/, uPlot bundled in), minified into dist/console/
 * with a content hash in each name, and manifest.json naming them: the server serves only those,
 * with a one-year immutable cache.
 */
export function buildConsoleAssets(outdir = path.join(root, 'dist', 'console')) {
  const require = createRequire(import.meta.url);
  const { buildSync } = require('esbuild');
  // Nothing is deleted first: a broker starting meanwhile reads the manifest it finds, and every
  // name in it exists (names are content hashes; the manifest is replaced in one rename).
  const result = buildSync({
    entryPoints: { main: path.join(root, 'console', 'main.ts'), style: path.join(root, 'console', 'console.css') },
    bundle: true,
    minify: true,
    format: 'esm',
    target: ['chrome110', 'firefox110', 'safari16'],
    outdir,
    entryNames: '[name]-[hash]',
    metafile: true,
    legalComments: 'linked',
    logLevel: 'warning',
    absWorkingDir: root,
    write: false,
  });
  mkdirSync(outdir, { recursive: true });
  // Each file written under a temporary name and renamed: a reader never sees half a file.
  const put = (file, contents) => {
    if (existsSync(file) && readFileSync(file).equals(Buffer.from(contents))) return;
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, contents);
    renameSync(tmp, file);
  };
  for (const f of result.outputFiles) put(f.path, f.contents);
  const manifest = {};
  for (const [file, out] of Object.entries(result.metafile.outputs)) {
    const name = path.basename(file);
    if (out.entryPoint?.endsWith('main.ts')) manifest['main.js'] = name;
    else if (out.entryPoint?.endsWith('console.css')) manifest['main.css'] = name;
    else if (name.endsWith('.LEGAL.txt')) manifest[name.replace(/-[A-Z0-9]+\.LEGAL\.txt$/, '.LEGAL.txt')] = name;
  }
  const icon = readFileSync(path.join(root, 'console', 'favicon.svg'));
  const iconName = `favicon-${createHash('sha256').update(icon).digest('hex').slice(0, 8).toUpperCase()}.svg`;
  put(path.join(outdir, iconName), icon);
  manifest['favicon.svg'] = iconName;
  put(path.join(outdir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  return manifest;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  if (process.argv.includes('--console')) buildConsoleAssets();
  else if (process.argv.includes('--prepare')) {
    // Without the compiler (production dependencies only) there is nothing to build with.
    if (!existsSync(path.join(root, 'node_modules', 'typescript', 'bin', 'tsc')) || !existsSync(path.join(root, 'server'))) {
      process.stderr.write('credbroker: prepare: no TypeScript compiler or sources here; dist/ is used as it is\n');
    } else build();
  } else build({ force: process.argv.includes('--force') });
}
