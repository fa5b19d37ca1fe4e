import { parse } from './parser.js';

/**
 * The columns a statement names, as written (`email`, `u.email`, `public.users.email`): column references anywhere
 * (result list, WHERE, JOIN, ORDER BY, function arguments), the targets of UPDATE ... SET and INSERT (cols). For an
 * operator deciding an approval; not used for decisions, so a name is shown as the statement spells it and `*` as
 * `*`. Empty when the text does not parse (it would not have been held then).
 */
export function columnsNamed(text: string): string[] {
  const p = parse(text);
  if (!p.ok) return [];
  const out = new Set<string>();
  const stack: unknown[] = [p.tree];
  while (stack.length > 0) {
    const v = stack.pop();
    if (Array.isArray(v)) {
      for (const x of v) stack.push(x);
      continue;
    }
    if (v === null || typeof v !== 'object') continue;
    const o = v as Record<string, unknown>;
    const ref = o['ColumnRef'] as { fields?: unknown[] } | undefined;
    if (ref?.fields) {
      const parts = ref.fields.map((f) => {
        const x = f as { String?: { sval?: string }; A_Star?: unknown };
        return x.String?.sval ?? (x.A_Star !== undefined ? '*' : '?');
      });
      out.add(parts.join('.'));
    }
    // UPDATE ... SET col = / INSERT INTO t (col, ...): ResTarget names outside a SELECT's result list.
    for (const key of ['targetList', 'cols'] as const) {
      const stmt = key === 'targetList' ? (o['UpdateStmt'] as Record<string, unknown> | undefined) : (o['InsertStmt'] as Record<string, unknown> | undefined);
      const list = stmt?.[key];
      if (Array.isArray(list)) {
        for (const t of list) {
          const name = (t as { ResTarget?: { name?: string } }).ResTarget?.name;
          if (name) out.add(name);
        }
      }
    }
    for (const k of Object.keys(o)) stack.push(o[k]);
  }
  return [...out];
}
