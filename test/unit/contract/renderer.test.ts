import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { rulesJsonSchema } from '../../../src/operator/rules.js';
import { schemaAt, suggestAt, yamlPathAt, type JsonSchema } from '../../../renderer/src/monaco/schema-completion.js';
import { tokenFromHash } from '../../../renderer/src/transport/token.js';

const ROOT = join(import.meta.dirname, '..', '..', '..');
const RENDERER = join(ROOT, 'renderer', 'src');

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? files(p) : /\.(ts|tsx)$/.test(name) ? [p] : [];
  });
}

/**
 * renderer/ runs in a browser page (and later in a sandboxed Electron renderer): no node:*, no electron, and from
 * src/ only the contract (DESIGN.md section 1, STYLE.md "Layers you can see").
 */
export function rendererViolations(file: string, source: string): string[] {
  const out: string[] = [];
  for (const m of source.matchAll(/(?:from\s+|import\s*\(\s*|import\s+)['"]([^'"]+)['"]/g)) {
    const spec = m[1]!;
    if (/^(node:|electron$|electron\/)/.test(spec) || ['fs', 'path', 'child_process', 'net', 'os', 'crypto'].includes(spec)) out.push(spec);
    if (spec.startsWith('.')) {
      const target = relative(ROOT, resolve(join(file, '..'), spec));
      if (!target.startsWith('renderer/') && !target.startsWith('src/contract/')) out.push(spec);
    }
  }
  return out;
}

describe('renderer layer', () => {
  it('detects forbidden imports (the check can fail)', () => {
    const f = join(RENDERER, 'screens', 'x.tsx');
    expect(rendererViolations(f, `import { readFileSync } from 'node:fs';\nimport { ipcRenderer } from 'electron';\nimport { x } from '../../../src/operator/service.js';\nimport type { A } from '../../../src/contract/api.js';\nimport { y } from './y.js';`))
      .toEqual(['node:fs', 'electron', '../../../src/operator/service.js']);
  });

  it('renderer/src imports no node:*, no electron, and nothing from src/ but src/contract/', () => {
    const offenders = files(RENDERER).flatMap((f) => rendererViolations(f, readFileSync(f, 'utf8')).map((imp) => `${relative(ROOT, f)} imports ${imp}`));
    expect(offenders).toEqual([]);
  });
});

describe('rules editor completion from the contract JSON Schema', () => {
  const schema = rulesJsonSchema() as JsonSchema;
  const doc = ['policy:', '  rules:', '    - name: ci', '      match: { groups: [ci] }', '      ', '  '];

  it('finds the key path from YAML indentation, through array items', () => {
    expect(yamlPathAt(doc, 4, 6)).toEqual(['policy', 'rules', '[]']);
    expect(yamlPathAt(doc, 5, 2)).toEqual(['policy']);
    expect(yamlPathAt(doc, 2, 6)).toEqual(['policy', 'rules', '[]']);
    expect(yamlPathAt(['policy:', '  rules:', '    - name: a', '      limits:', '        '], 4, 8)).toEqual(['policy', 'rules', '[]', 'limits']);
  });

  it('suggests the properties a policy rule has, and statement classes after allow:', () => {
    const keys = suggestAt(schema, doc, 4, 6).map((s) => s.label);
    expect(keys).toEqual(expect.arrayContaining(['allow', 'review', 'deny', 'match']));
    expect(keys).not.toContain('rules');
    const values = suggestAt(schema, ['policy:', '  rules:', '    - name: a', '      allow: [read, '], 3, 'allow: [read, '.length + 6).map((s) => s.label);
    expect(values).toEqual(expect.arrayContaining(['read', 'write', 'ddl']));
    expect(schemaAt(schema, ['policy', 'nope'])).toEqual([]);
  });
});

describe('operator token in the URL fragment', () => {
  it('takes it from #token= only', () => {
    expect(tokenFromHash('#token=abc_DEF-123')).toBe('abc_DEF-123');
    expect(tokenFromHash('#/feed&token=xyz')).toBe('xyz');
    expect(tokenFromHash('#/feed')).toBeNull();
    expect(tokenFromHash('#mytoken=abc')).toBeNull();
  });
});
