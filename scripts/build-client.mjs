#!/usr/bin/env node
// Bundles the client's modules (client/src/) into the files users run, each one zero-dependency
// file of Node built-ins:
//   client/credbroker-client.mjs   the command (also the package's `credbroker-client` bin)
//   action/credbroker-action.mjs          the GitHub Action's entry point (action.yml runs it on node24)
// Both are committed: a CI job downloads or checks out a file, it never runs npm install.
//
//   node scripts/build-client.mjs           rebuild both
//   node scripts/build-client.mjs --check   fail if a committed bundle differs from its sources
import { build } from 'esbuild';
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export const BUNDLES = [
  {
    entry: 'client/src/cli.mjs',
    out: 'client/credbroker-client.mjs',
    mode: 0o755,
    banner: [
      '#!/usr/bin/env node',
      "// credbroker-client: gets this CI job's OIDC token, exchanges it at a credbroker for short-lived AWS",
      '// credentials and hands them to the job. One file, Node >= 20 built-ins only (nothing to install).',
      '// Built from client/src/ by `npm run build:client` (esbuild): edit the sources, not this file.',
    ].join('\n'),
  },
  {
    entry: 'action/src/main.mjs',
    out: 'action/credbroker-action.mjs',
    mode: 0o644,
    banner: [
      '// credbroker GitHub Action: AWS credentials for this job from a credbroker (see action.yml).',
      '// Built from action/src/ and client/src/ by `npm run build:client` (esbuild): edit the sources.',
    ].join('\n'),
  },
];

/** Each bundle's text, built in memory from the sources. */
export async function buildBundles() {
  const out = [];
  for (const b of BUNDLES) {
    const result = await build({
      entryPoints: [path.join(root, b.entry)],
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      write: false,
      legalComments: 'none',
      charset: 'utf8',
      banner: { js: b.banner },
      logLevel: 'silent',
    });
    out.push({ ...b, text: result.outputFiles[0].text });
  }
  return out;
}

const invokedDirectly = process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (invokedDirectly) {
  const check = process.argv.includes('--check');
  const stale = [];
  for (const b of await buildBundles()) {
    const file = path.join(root, b.out);
    let current = '';
    try {
      current = readFileSync(file, 'utf8');
    } catch {
      /* missing */
    }
    if (current === b.text) continue;
    if (check) stale.push(b.out);
    else {
      mkdirSync(path.dirname(file), { recursive: true });
      writeFileSync(file, b.text, { mode: b.mode });
      console.log(`built ${b.out}`);
    }
  }
  if (stale.length > 0) {
    console.error(`stale bundle(s), run npm run build:client and commit: ${stale.join(', ')}`);
    process.exit(1);
  }
  if (check) console.log('client bundles match their sources');
}
