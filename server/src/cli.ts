#!/usr/bin/env node
// credbroker command line. Each command lives in its own module, loaded on demand so that
// `credbroker token decode` does not pay for the AWS SDK.
const COMMANDS: Record<string, { module: string; summary: string }> = {
  serve: { module: './cli/serve.js', summary: 'run the broker (HTTP API)' },
  config: { module: './cli/config.js', summary: 'config validate | config schema' },
  policy: { module: './cli/policy.js', summary: 'policy explain --claims F --role R | policy test CASES.yaml' },
  token: { module: './cli/token.js', summary: 'token decode [TOKEN|-]: header and claims, not verified' },
  rotate: { module: './rotation/cli.js', summary: 'rotate static IAM user keys (--user X | --all) [--dry-run]' },
  keys: { module: './rotation/cli-keys.js', summary: 'list managed IAM users and their keys' },
};

function usage(): string {
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(10)} ${c.summary}`);
  return `usage: credbroker <command> [options]\n\ncommands:\n${lines.join('\n')}\n`;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '-h' || name === '--help' || name === 'help') {
    process.stdout.write(usage());
    return name === undefined ? 2 : 0;
  }
  const command = COMMANDS[name];
  if (!command) {
    process.stderr.write(`credbroker: unknown command "${name}"\n${usage()}`);
    return 2;
  }
  const mod = (await import(command.module)) as { main(argv: string[]): Promise<number> };
  return mod.main(rest);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`credbroker: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
