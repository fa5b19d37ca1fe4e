import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { STATEMENT_TABLE } from '../../../src/sql/node-table.js';
import { loadParser } from '../../../src/sql/parser.js';
import { classifyStatement } from '../../../src/sql/statement.js';
import { STATEMENT_CLASSES } from '../../../src/sql/types.js';

/** The node types of the installed grammar, from the AST types generated from libpg_query's protobuf. */
function statementNodeTypes(): string[] {
  const dir = dirname(createRequire(import.meta.url).resolve('@pgsql/types/package.json'));
  const source = readFileSync(join(dir, 'types.d.ts'), 'utf8');
  return [...source.matchAll(/^export interface (\w+Stmt) \{/gm)].map((m) => m[1]!);
}

beforeAll(loadParser);

describe('statement node table', () => {
  it('lists every *Stmt node type of @pgsql/types, as a class or as an explicit refusal', () => {
    const types = statementNodeTypes();
    expect(types.length).toBeGreaterThan(100); // the regex still finds them
    expect(types.filter((t) => !(t in STATEMENT_TABLE))).toEqual([]);
  });

  it('uses only known statement classes', () => {
    for (const [type, rule] of Object.entries(STATEMENT_TABLE)) {
      if (typeof rule === 'string') expect(STATEMENT_CLASSES, type).toContain(rule);
      else expect(rule.refuse.length, type).toBeGreaterThan(0);
    }
  });

  it('refuses a node type it does not know, and the ones that are not statements (fail closed)', () => {
    for (const node of [{ FutureStmt: {} }, { ReturnStmt: {} }, { PLAssignStmt: {} }, { RawStmt: {} }, {}]) {
      const r = classifyStatement(node, 'x');
      expect('ok' in r && r.ok === false && r.code).toBe('0A000');
    }
  });
});
