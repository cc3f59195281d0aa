// A fake `circleci` executable for `circleci run oidc get --claims '{"aud":"X"}'`, which prints a
// fresh token for the requested claims. The fake asks a local mint server (standing in for
// CircleCI's API) for the token, so every call yields a new one, as with the real CLI.
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startProviderServer, type Mint, type ProviderServer } from './server.js';

export interface FakeCircleci extends ProviderServer {
  /** Directory holding the `circleci` executable: put it first on PATH. */
  binDir: string;
  /** Every argv the fake was invoked with. */
  invocations(): string[][];
}

export async function startFakeCircleci(mint: Mint): Promise<FakeCircleci> {
  const calls: string[][] = [];
  const srv = await startProviderServer(async (req) => {
    const { argv } = JSON.parse(req.body) as { argv: string[] };
    calls.push(argv);
    const [run, oidc, get, flag, claims] = argv;
    if (run !== 'run' || oidc !== 'oidc' || get !== 'get') return { status: 400, body: { error: `unknown command: ${argv.join(' ')}` } };
    let aud: string | undefined;
    if (flag === '--claims') {
      const parsed = JSON.parse(claims ?? '{}') as { aud?: unknown };
      if (typeof parsed.aud === 'string') aud = parsed.aud;
    }
    return { status: 200, body: { token: await mint(aud) } };
  });
  const binDir = mkdtempSync(path.join(os.tmpdir(), 'fake-circleci-'));
  const script = `#!${process.execPath}
// fake circleci CLI (test stand-in; CommonJS, so no top-level await)
(async () => {
  const res = await fetch(${JSON.stringify(`${srv.origin}/cli`)}, { method: 'POST', body: JSON.stringify({ argv: process.argv.slice(2) }) });
  const body = await res.json();
  if (!res.ok) { process.stderr.write('Error: ' + body.error + '\\n'); process.exit(1); }
  process.stdout.write(body.token + '\\n');
})();
`;
  const file = path.join(binDir, 'circleci');
  writeFileSync(file, script);
  chmodSync(file, 0o755);
  const close = srv.close;
  return Object.assign(srv, {
    binDir,
    invocations: () => calls,
    close: async () => {
      await close();
      rmSync(binDir, { recursive: true, force: true });
    },
  });
}
