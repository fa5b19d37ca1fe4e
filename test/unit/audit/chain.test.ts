import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { CHAINED_COLUMNS, chainHash, DOMAIN, GENESIS, type ChainValue } from '../../../src/audit/chain.js';

const text = (s: string) => {
  const b = Buffer.from(s, 'utf8');
  const len = Buffer.alloc(4);
  len.writeUInt32BE(b.length);
  return Buffer.concat([Buffer.from([0x03]), len, b]);
};
const int = (n: number) => {
  const b = Buffer.alloc(9);
  b[0] = 0x01;
  b.writeBigInt64BE(BigInt(n), 1);
  return b;
};
const real = (n: number) => {
  const b = Buffer.alloc(9);
  b[0] = 0x02;
  b.writeDoubleBE(n, 1);
  return b;
};
const NULL = Buffer.from([0x00]);

describe('chainHash: the canonical encoding', () => {
  it('is exactly the byte layout documented in chain.ts', () => {
    const prev = Buffer.alloc(32, 0xab);
    const values: ChainValue[] = [7, 3, 1, -1700000000000, 'parse', null, "SELECT 'ü😀'", '["read"]', null, 'allow', 'r1', null, '["x"]', null];
    const bytes = Buffer.concat([
      prev, text(DOMAIN), text('statements'),
      int(7), int(3), int(1), int(-1700000000000), text('parse'), NULL, text("SELECT 'ü😀'"), text('["read"]'), NULL,
      text('allow'), text('r1'), NULL, text('["x"]'), NULL,
    ]);
    expect(chainHash(prev, 'statements', values).toString('hex')).toBe(createHash('sha256').update(bytes).digest('hex'));
  });

  it('encodes REAL columns as float64 whether or not the value is whole (SQLite gives 2.0 back as 2)', () => {
    const values: ChainValue[] = [1, 9, 100, 2, 5, null, null, null, null];
    const bytes = Buffer.concat([GENESIS, text(DOMAIN), text('statement_results'), int(1), int(9), int(100), real(2), int(5), NULL, NULL, NULL]);
    expect(chainHash(GENESIS, 'statement_results', values)).toEqual(createHash('sha256').update(bytes).digest());
  });

  it('adds nothing for a NULL optional trailing column (rows from before migration 4 keep their hashes), and encodes a value', () => {
    const before = Buffer.concat([GENESIS, text(DOMAIN), text('statement_results'), int(1), int(9), int(100), real(2), int(5), NULL, NULL, NULL]);
    expect(chainHash(GENESIS, 'statement_results', [1, 9, 100, 2, 5, null, null, null, null])).toEqual(createHash('sha256').update(before).digest());
    expect(chainHash(GENESIS, 'statement_results', [1, 9, 100, 2, 5, null, null, null, 3]))
      .toEqual(createHash('sha256').update(Buffer.concat([before, int(3)])).digest());
  });

  it('is unambiguous: field boundaries, NULL vs empty, table and predecessor all change the hash', () => {
    const ev = (kind: string, detail: string | null): ChainValue[] => [1, kind, null, 0, detail];
    const hashes = [
      chainHash(GENESIS, 'audit_events', ev('ab', 'c')),
      chainHash(GENESIS, 'audit_events', ev('a', 'bc')),
      chainHash(GENESIS, 'audit_events', ev('a', '')),
      chainHash(GENESIS, 'audit_events', ev('a', null)),
      chainHash(Buffer.alloc(32, 1), 'audit_events', ev('a', null)),
    ].map((h) => h.toString('hex'));
    expect(new Set(hashes).size).toBe(hashes.length);
  });

  it('refuses a row with the wrong number of columns', () => {
    expect(() => chainHash(GENESIS, 'audit_events', [1, 'x'])).toThrow(/expected 5 values/);
    expect(CHAINED_COLUMNS.statements[0]).toEqual(['id', 'int']);
  });

  it('handles texts larger than its scratch buffer', () => {
    const long = 'é'.repeat(100_000);
    const a = chainHash(GENESIS, 'audit_events', [1, 'k', null, 0, long]);
    const bytes = Buffer.concat([GENESIS, text(DOMAIN), text('audit_events'), int(1), text('k'), NULL, int(0), text(long)]);
    expect(a).toEqual(createHash('sha256').update(bytes).digest());
  });
});
