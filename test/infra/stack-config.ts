// Turns a Pulumi stack file (Pulumi.<stack>.yaml) into the runtime config Pulumi would hand the
// program: structured values as JSON text, scalars as strings.
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';

export const EXAMPLE_STACK_FILE = new URL('../../infra/Pulumi.example.yaml', import.meta.url);

export function stackFileConfig(file: URL = EXAMPLE_STACK_FILE): Record<string, unknown> {
  return (parse(readFileSync(file, 'utf8')) as { config: Record<string, unknown> }).config;
}

export function asRuntimeConfig(config: Record<string, unknown>): Record<string, string> {
  return Object.fromEntries(Object.entries(config).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)]));
}
