// Every relative link and #anchor in the README and docs/ resolves, and so does every `docs/…` path
// that code, config or docs mention: moving a page cannot leave a dead reference behind.
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { ROOT, anchors, docFiles, exists, links, read, slug } from './markdown.js';

/** Why `target`, linked from `from` (a repository-relative file), does not resolve; undefined if it does. */
function brokenLink(from: string, target: string): string | undefined {
  if (/^[a-z][a-z0-9+.-]*:/i.test(target)) return undefined; // https:, mailto: … — not ours to check offline
  const [rawPath, anchor] = target.split('#', 2) as [string, string | undefined];
  const file = rawPath === '' ? from : path.normalize(path.join(path.dirname(from), decodeURI(rawPath)));
  if (file.startsWith('..') || path.isAbsolute(file)) return `${target}: points outside the repository`;
  const abs = path.join(ROOT, file);
  if (!exists(abs)) return `${target}: ${file} does not exist`;
  if (anchor === undefined) return undefined;
  if (statSync(abs).isDirectory() || !file.endsWith('.md')) return `${target}: an anchor on something that is not a Markdown page`;
  const offered = anchors(readFileSync(abs, 'utf8'));
  return offered.has(anchor) ? undefined : `${target}: no heading "#${anchor}" in ${file}`;
}

/** Tracked (and new, not ignored) files that may mention a docs path: code, scripts, config, docs. */
function filesMentioningDocs(): string[] {
  const listed = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard'], { cwd: ROOT, encoding: 'utf8' }).split('\n');
  return listed.filter(
    (f) => f !== '' && f !== 'package-lock.json' && (/\.(ts|mts|mjs|js|sh|ya?ml|json|md)$/.test(f) || f === '.ci/run') && exists(path.join(ROOT, f)),
  );
}

describe('links in the README and docs/', () => {
  const files = docFiles();

  it('covers the README and every page under docs/', () => {
    expect(files).toContain('README.md');
    expect(files).toContain('docs/README.md');
    expect(files.filter((f) => f.startsWith('docs/')).length).toBeGreaterThanOrEqual(10);
  });

  it.each(files)('every relative link and anchor in %s resolves', (file) => {
    const problems = links(read(file))
      .map(({ line, target }) => {
        const why = brokenLink(file, target);
        return why && `${file}:${line}: ${why}`;
      })
      .filter(Boolean);
    expect(problems).toEqual([]);
  });

  it('names anchors the way GitHub does', () => {
    const cases: Array<[string, string]> = [
      ['`credential_process`, its cache, and fresh tokens', 'credential_process-its-cache-and-fresh-tokens'],
      ['The permissions, and why each is the least that works', 'the-permissions-and-why-each-is-the-least-that-works'],
      ['Exchange: broker vs. the "one request in, one STS call out" ceiling', 'exchange-broker-vs-the-one-request-in-one-sts-call-out-ceiling'],
      ['`POST /v1/credentials[?format=json|credential-process|env]`', 'post-v1credentialsformatjsoncredential-processenv'],
      ['Walkthrough: GitHub Actions to AWS', 'walkthrough-github-actions-to-aws'],
      ['Load and fault tests (`npm run test:load`)', 'load-and-fault-tests-npm-run-testload'],
    ];
    for (const [heading, anchor] of cases) expect(slug(heading), heading).toBe(anchor);
    expect([...anchors('# A\n## Twice\n## Twice\n```sh\n# not a heading\n```\n')]).toEqual(['a', 'twice', 'twice-1']);
  });

  it('reports a missing page, a missing anchor and a link out of the repository', () => {
    expect(brokenLink('docs/api.md', 'nope.md')).toMatch(/docs\/nope.md does not exist/);
    expect(brokenLink('docs/api.md', 'policy.md#no-such-heading')).toMatch(/no heading "#no-such-heading" in docs\/policy.md/);
    expect(brokenLink('docs/api.md', '../../etc/passwd')).toMatch(/outside the repository/);
    expect(brokenLink('docs/api.md', 'policy.md#conditions')).toBeUndefined();
    expect(brokenLink('docs/api.md', '#errors')).toBeUndefined();
  });
});

describe('docs/ paths mentioned in code, config and docs', () => {
  it('every docs/… path resolves, with its anchor', () => {
    const problems: string[] = [];
    let mentions = 0;
    for (const file of filesMentioningDocs()) {
      const text = readFileSync(path.join(ROOT, file), 'utf8');
      // "docs/…" at the start of a path, not inside another one (test/docs/, example.com/docs/).
      for (const m of text.matchAll(/(?<![\w.@/-])docs\/[\w./-]*(?:#[\w-]+)?/g)) {
        const ref = m[0].replace(/[.]+$/, '');
        const line = text.slice(0, m.index).split('\n').length;
        mentions++;
        const why = brokenLink('README.md', ref); // resolved from the repository root
        if (why) problems.push(`${file}:${line}: ${why}`);
      }
    }
    expect(problems).toEqual([]);
    // The code and infra/Pulumi.yaml point at these pages: the scan must have seen them.
    expect(mentions).toBeGreaterThan(20);
  });
});
