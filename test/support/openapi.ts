// Validates real HTTP responses against the OpenAPI document the broker serves.
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { readFileSync } from 'node:fs';

const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => void;
export const openapi = JSON.parse(readFileSync(new URL('../../server/openapi.json', import.meta.url), 'utf8')) as {
  paths: Record<string, Record<string, { responses: Record<string, unknown> }>>;
  components: { schemas: Record<string, unknown>; responses: Record<string, { content: Record<string, { schema: unknown }> }> };
};

const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats(ajv);
ajv.addSchema({ $id: 'openapi', components: openapi.components });

function schemaFor(path: string, method: string, status: number, contentType: string): unknown {
  const op = openapi.paths[path]?.[method];
  if (!op) throw new Error(`no operation ${method} ${path}`);
  let res = op.responses[String(status)] as { $ref?: string; content?: Record<string, { schema: unknown }> } | undefined;
  if (!res) throw new Error(`status ${status} not documented for ${method} ${path}`);
  if (res.$ref) res = openapi.components.responses[res.$ref.split('/').pop()!]!;
  const media = Object.keys(res.content ?? {}).find((m) => contentType.startsWith(m));
  if (!media) throw new Error(`content type ${contentType} not documented for ${status} ${method} ${path}`);
  // Rewrite local refs to point into the registered components document.
  return JSON.parse(JSON.stringify(res.content![media]!.schema).replace(/"#\/components\//g, '"openapi#/components/'));
}

/** Throws with ajv's errors unless the response matches the documented schema. */
export function assertMatchesOpenApi(path: string, method: string, status: number, contentType: string, body: unknown): void {
  const validate = ajv.compile(schemaFor(path, method, status, contentType) as object);
  if (!validate(body)) throw new Error(`response does not match OpenAPI (${status} ${method} ${path}): ${ajv.errorsText(validate.errors)}`);
}
