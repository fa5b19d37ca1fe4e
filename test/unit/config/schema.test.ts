import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
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

  it('ships with the package and the desktop app', () => {
    const root = fileURLToPath(new URL('../../../', import.meta.url));
    const packed = JSON.parse(execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, encoding: 'utf8' })) as
      { files: { path: string }[] }[];
    const paths = packed[0]!.files.map((f) => f.path);
    expect(paths).toContain('schema/sluice-config.schema.json');
    expect(paths).toContain('bin/sluice.js');
    // Only what runs: no tests, benches or sources of other layers in the package.
    expect(paths.filter((p) => /^(test|bench|src|renderer|main)\//.test(p))).toEqual([]);
    const builder = parseYaml(readFileSync(new URL('../../../electron-builder.yml', import.meta.url), 'utf8')) as { files: string[] };
    expect(builder.files).toContain('schema/sluice-config.schema.json');
  });
});
