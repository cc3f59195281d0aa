// Validates real HTTP responses against the OpenAPI documents the broker serves: the public one
// (server/openapi.json) and the admin one (server/admin-openapi.json).
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { readFileSync } from 'node:fs';

const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => void;

export interface OpenApiDocument {
  paths: Record<string, Record<string, { responses: Record<string, unknown>; 'x-credbroker-scope'?: string }>>;
  components: { schemas: Record<string, unknown>; responses: Record<string, { content: Record<string, { schema: unknown }> }> };
}

function checker(file: string) {
  const doc = JSON.parse(readFileSync(new URL(`../../server/${file}`, import.meta.url), 'utf8')) as OpenApiDocument;
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats(ajv);
  ajv.addSchema({ $id: 'openapi', components: doc.components });

  function schemaFor(path: string, method: string, status: number, contentType: string): unknown {
    const op = doc.paths[path]?.[method];
    if (!op) throw new Error(`no operation ${method} ${path}`);
    let res = op.responses[String(status)] as { $ref?: string; content?: Record<string, { schema: unknown }> } | undefined;
    if (!res) throw new Error(`status ${status} not documented for ${method} ${path}`);
    if (res.$ref) res = doc.components.responses[res.$ref.split('/').pop()!]!;
    if (!res.content) return undefined; // e.g. 204: no body
    const media = Object.keys(res.content).find((m) => contentType.startsWith(m));
    if (!media) throw new Error(`content type ${contentType} not documented for ${status} ${method} ${path}`);
    // Rewrite local refs to point into the registered components document.
    return JSON.parse(JSON.stringify(res.content[media]!.schema).replace(/"#\/components\//g, '"openapi#/components/'));
  }

  /** Throws with ajv's errors unless the response matches the documented schema. */
  function assertMatches(path: string, method: string, status: number, contentType: string, body: unknown): void {
    const schema = schemaFor(path, method, status, contentType);
    if (schema === undefined) {
      if (body !== undefined && body !== '') throw new Error(`${status} ${method} ${path} has a body, but none is documented`);
      return;
    }
    const validate = ajv.compile(schema as object);
    if (!validate(body)) throw new Error(`response does not match OpenAPI (${status} ${method} ${path}): ${ajv.errorsText(validate.errors)}`);
  }
  return { doc, assertMatches };
}

const publicApi = checker('openapi.json');
const adminApi = checker('admin-openapi.json');

export const openapi = publicApi.doc;
export const assertMatchesOpenApi = publicApi.assertMatches;
export const adminOpenapi = adminApi.doc;
export const assertMatchesAdminOpenApi = adminApi.assertMatches;
