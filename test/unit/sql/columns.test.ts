import { beforeAll, describe, expect, it } from 'vitest';
import { columnsNamed } from '../../../src/sql/columns.js';
import { loadParser } from '../../../src/sql/parser.js';

beforeAll(async () => {
  await loadParser();
});

describe('columnsNamed (shown to the operator with an approval)', () => {
  it('lists SET targets, INSERT columns and column references anywhere, as written', () => {
    expect(columnsNamed("UPDATE orders SET status = 'shipped', note = upper(o.note) FROM other o WHERE orders.id = o.id AND total > 10").sort())
      .toEqual(['note', 'o.id', 'o.note', 'orders.id', 'status', 'total'].sort());
    expect(columnsNamed('INSERT INTO t (a, b) SELECT x, y FROM s').sort()).toEqual(['a', 'b', 'x', 'y']);
    expect(columnsNamed('DELETE FROM users WHERE email LIKE $1')).toEqual(['email']);
    expect(columnsNamed('SELECT u.* FROM users u')).toEqual(['u.*']);
  });

  it('is empty for text that does not parse, and for statements without columns', () => {
    expect(columnsNamed('UPDATE SET')).toEqual([]);
    expect(columnsNamed('SELECT 1')).toEqual([]);
  });
});
