import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { configJsonSchema, configJsonSchemaText } from '../../../src/config/schema.js';

const SHIPPED = new URL('../../../schema/sluice-config.schema.json', import.meta.url);
const REGENERATE = 'schema/sluice-config.schema.json is stale: run `npm run build && node dist/scripts/gen-config-schema.js`';

describe('config JSON Schema', () => {
  it('the shipped schema file equals the schema generated from the zod model', () => {
    const shipped = readFileSync(SHIPPED, 'utf8');
    expect(JSON.parse(shipped), REGENERATE).toEqual(configJsonSchema());
    expect(shipped, REGENERATE).toBe(configJsonSchemaText());
  });

  it('describes the input side: keys with defaults are optional, unknown keys refused', () => {
    const schema = configJsonSchema() as { required?: string[]; additionalProperties?: boolean; properties: Record<string, { description?: string }> };
    expect(schema.required).toEqual(['targets']);
    expect(schema.additionalProperties).toBe(false);
    expect(schema.properties['dataDir']?.description).toMatch(/SQLite/);
  });
});
