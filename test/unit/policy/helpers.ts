import { PolicySchema, type Policy, type PolicyInput } from '../../../src/policy/model.js';
import type { PolicyContext } from '../../../src/policy/evaluate.js';
import type { ClassifiedStatement, RelationRef } from '../../../src/sql/types.js';

/** A relation from `schema.name` or an unqualified `name`. */
export function rel(text: string): RelationRef {
  const dot = text.indexOf('.');
  return dot < 0 ? { schema: null, name: text } : { schema: text.slice(0, dot), name: text.slice(dot + 1) };
}

type StmtInit = Partial<Omit<ClassifiedStatement, 'reads' | 'writes'>> & { reads?: string[]; writes?: string[] };

/** A hand-built classified statement (the classifier's output contract, src/sql/types.ts). */
export function stmt(init: StmtInit = {}): ClassifiedStatement {
  const { reads = [], writes = [], ...rest } = init;
  return {
    class: 'read',
    kind: 'SelectStmt',
    text: 'SELECT 1',
    functions: [],
    hidden: [],
    settings: [],
    ...rest,
    reads: reads.map(rel),
    writes: writes.map(rel),
  };
}

export const read = (...tables: string[]) => stmt({ class: 'read', reads: tables, text: `SELECT * FROM ${tables.join(', ')}` });
export const write = (table: string, ...reads: string[]) =>
  stmt({ class: 'write', kind: 'DeleteStmt', writes: [table], reads, text: `DELETE FROM ${table}` });
export const setting = (name: string, value: string | null) =>
  stmt({ class: 'session', kind: 'VariableSetStmt', settings: [{ name, value }], text: `SET ${name} = ${value ?? 'DEFAULT'}` });

export function ctx(over: Partial<PolicyContext> & { name?: string; groups?: string[] } = {}): PolicyContext {
  const { name = 'ci-bot', groups = ['ci'], ...rest } = over;
  return { identity: { name, groups }, target: 'shop', applicationName: 'psql', clientAddr: '127.0.0.1', ...rest };
}

export function policy(input: PolicyInput): Policy {
  return PolicySchema.parse(input);
}
