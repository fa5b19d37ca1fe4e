import { describe, expect, it } from 'vitest';
import { buildDataRow, DataRowError, readDataRow, rewriteDataRow } from '../../../src/masking/datarow.js';
import { compileMasker, type FieldMasker } from '../../../src/masking/methods.js';

const KEY = Buffer.alloc(32, 1);
const redact = compileMasker({ kind: 'redact', text: '***' }, 'text', 0, KEY);
const email = compileMasker({ kind: 'email' }, 'text', 0, KEY);
const toNull = compileMasker({ kind: 'null' }, 'text', 0, KEY);
const texts = (f: Buffer) => readDataRow(f).map((v) => (v === null ? null : v.toString()));

describe('rewriteDataRow', () => {
  it('returns the same Buffer when nothing is masked', () => {
    const row = buildDataRow(['1', 'a@b.c', null]);
    expect(rewriteDataRow(row, [null, null, null])).toBe(row);
    // A masked field that is already NULL needs no change either.
    expect(rewriteDataRow(row, [null, null, redact])).toBe(row);
  });

  it('masks the planned fields and keeps the others byte for byte', () => {
    const row = buildDataRow(['1', 'alice@example.com', null, 'keep', 'secret']);
    const out = rewriteDataRow(row, [null, email, redact, null, toNull]);
    expect(texts(out)).toEqual(['1', '***@example.com', null, 'keep', null]);
    expect(out.readInt32BE(1)).toBe(out.length - 1);
    expect(row.toString()).toContain('alice'); // the input is not modified
  });

  it('handles empty values, wide rows and repeated use', () => {
    const values = Array.from({ length: 300 }, (_, i) => (i % 3 === 0 ? `v${i}` : i % 3 === 1 ? '' : null));
    const maskers: (FieldMasker | null)[] = values.map((_, i) => (i % 2 === 0 ? redact : null));
    for (let round = 0; round < 3; round++) {
      const out = texts(rewriteDataRow(buildDataRow(values), maskers));
      values.forEach((v, i) => expect(out[i]).toBe(i % 2 === 0 && v !== null ? '***' : v));
    }
    // A narrower row after a wide one.
    expect(texts(rewriteDataRow(buildDataRow(['x', 'y']), [null, redact]))).toEqual(['x', '***']);
  });

  it('copies short and long runs alike (the byte loop below 64 bytes, Buffer#copy above)', () => {
    const partial = compileMasker({ kind: 'partial', first: 2, last: 3, fill: '•' }, 'text', 0, KEY);
    for (const len of [0, 1, 5, 63, 64, 65, 200, 5000]) {
      const long = 'x'.repeat(len);
      const mail = `${'m'.repeat(len + 1)}@${'d'.repeat(len)}.example`;
      const card = `${'9'.repeat(len)}1234`;
      const out = texts(rewriteDataRow(buildDataRow([long, mail, card, long + 'z']), [null, email, partial, null]));
      const hidden = Math.max(0, card.length - 5);
      expect(out).toEqual([
        long, `***@${'d'.repeat(len)}.example`,
        card.length <= 5 ? '•'.repeat(card.length) : `${card.slice(0, 2)}${'•'.repeat(hidden)}234`, long + 'z',
      ]);
    }
  });

  it('refuses malformed frames and a field count that differs from the plan', () => {
    const row = buildDataRow(['a', 'b']);
    expect(() => rewriteDataRow(row, [redact])).toThrow(DataRowError);
    const truncated = Buffer.from(row.subarray(0, row.length - 1));
    truncated.writeInt32BE(truncated.length - 1, 1);
    expect(() => rewriteDataRow(truncated, [redact, redact])).toThrow(DataRowError);
    const lying = Buffer.from(row);
    lying.writeInt32BE(1000, 7);
    expect(() => rewriteDataRow(lying, [redact, null])).toThrow(/out of bounds/);
    const trailing = Buffer.concat([row, Buffer.from([0])]);
    trailing.writeInt32BE(trailing.length - 1, 1);
    expect(() => rewriteDataRow(trailing, [redact, null])).toThrow(/after the last/);
    const notRow = Buffer.from(row);
    notRow[0] = 0x43;
    expect(() => rewriteDataRow(notRow, [null, null])).toThrow(DataRowError);
  });
});
