#!/usr/bin/env node
// Architectural lint: rules tsc cannot check.
// - server/src/core is pure: no express, no AWS SDK, no network, no filesystem, no clock reads.
// - Nothing in server/ or infra/ imports test-only packages (the AGPL IAM simulator among them).
// - No console.log in server code (logs go through pino, with redaction).
// - The console never renders raw HTML: Preact escapes every value, unless told not to.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const problems = [];

function* files(dir) {
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) yield* files(p);
    else if (p.endsWith('.ts') || p.endsWith('.tsx')) yield p;
  }
}

const rules = [
  {
    dir: 'server/src/core',
    forbid: [/from ['"]express/, /from ['"]@aws-sdk\//, /from ['"]node:(http|https|net|fs|fs\/promises|child_process)['"]/, /\bfetch\(/, /Date\.now\(\)|new Date\(\)/],
    why: 'the pure core must not do I/O or read the clock (take `now` as an argument)',
  },
  { dir: 'server', forbid: [/@cloud-copilot\/iam-simulate/, /from ['"]vitest/, /from ['"]supertest/], why: 'test-only packages never ship' },
  { dir: 'infra', forbid: [/@cloud-copilot\/iam-simulate/], why: 'the IAM simulator is AGPL and test-only' },
  { dir: 'server', forbid: [/console\.log\(/], why: 'log through pino (structured, redacted)' },
  { dir: 'server/src/console', forbid: [/dangerouslySetInnerHTML|innerHTML/], why: 'the console renders text, never HTML: escaping is Preact\'s job' },
  { dir: 'console', forbid: [/innerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function/], why: 'the browser code builds DOM nodes and text, never HTML strings' },
];

for (const rule of rules) {
  let dir;
  try {
    dir = path.join(root, rule.dir);
    statSync(dir);
  } catch {
    continue;
  }
  for (const file of files(dir)) {
    const lines = readFileSync(file, 'utf8').split('\n');
    lines.forEach((line, i) => {
      if (line.trim().startsWith('//') || line.trim().startsWith('*')) return;
      for (const re of rule.forbid) {
        if (re.test(line)) problems.push(`${path.relative(root, file)}:${i + 1}: ${rule.why}: ${line.trim()}`);
      }
    });
  }
}

if (problems.length > 0) {
  console.error(problems.join('\n'));
  process.exit(1);
}
console.log('lint: ok');
