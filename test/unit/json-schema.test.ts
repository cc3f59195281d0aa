// The JSON Schema for editors is generated from the same definition the broker validates with;
// the committed copy must be exactly what the definition generates today.
import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import { configJsonSchema } from '../../server/src/config/schema.js';

it('keeps config/credbroker.schema.json in step with the config definition (npm run config:schema)', () => {
  const committed = JSON.parse(readFileSync(new URL('../../config/credbroker.schema.json', import.meta.url), 'utf8')) as unknown;
  expect(committed).toEqual(configJsonSchema());
});
