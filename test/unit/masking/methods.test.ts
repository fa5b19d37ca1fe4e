import { mkdtempSync, readFileSync, statSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadOrCreateMaskKey, MaskKeyError } from '../../../src/masking/key.js';
import { compileMasker, maskString, typeHandling, TypeOid, type WireFormat } from '../../../src/masking/methods.js';
import type { MaskMethod } from '../../../src/masking/model.js';

const KEY = Buffer.alloc(32, 7);
const OTHER_KEY = Buffer.alloc(32, 8);
const run = (m: MaskMethod, oid: number, format: WireFormat, value: Buffer) => {
  const masker = compileMasker(m, typeHandling(oid), format, KEY);
  // Embed the value in a larger buffer: maskers must honour start/end.
  const buf = Buffer.concat([Buffer.from('XX'), value, Buffer.from('YY')]);
  return masker(buf, 2, 2 + value.length);
};

describe('string methods', () => {
  it('redact, null, email, partial, regex', () => {
    expect(maskString({ kind: 'redact', text: '***' }, 'secret', KEY)).toBe('***');
    expect(maskString({ kind: 'null' }, 'secret', KEY)).toBeNull();
    expect(maskString({ kind: 'email' }, 'alice@example.com', KEY)).toBe('***@example.com');
    expect(maskString({ kind: 'email' }, 'a@b@corp.io', KEY)).toBe('***@corp.io');
    expect(maskString({ kind: 'email' }, 'no-domain', KEY)).toBe('***');
    expect(maskString({ kind: 'email' }, 'trailing@', KEY)).toBe('***');
    const partial = { kind: 'partial', first: 2, last: 3, fill: '*' } as const;
    expect(maskString(partial, '4111222233334444', KEY)).toBe('41***********444');
    // Too short to hide anything while keeping first+last: hidden whole.
    expect(maskString(partial, '12345', KEY)).toBe('*****');
    expect(maskString({ ...partial, first: 0, last: 0 }, 'abc', KEY)).toBe('***');
    // Code points, not UTF-16 units.
    expect(maskString({ ...partial, first: 1, last: 1 }, '😀ab😀', KEY)).toBe('😀**😀');
    expect(maskString({ kind: 'regex', pattern: '\\d', replacement: '#' }, 'a1b22', KEY)).toBe('a#b##');
  });

  it('hash is keyed and stable', () => {
    const h = maskString({ kind: 'hash' }, 'alice', KEY);
    expect(h).toMatch(/^[0-9a-f]{32}$/);
    expect(maskString({ kind: 'hash' }, 'alice', KEY)).toBe(h);
    expect(maskString({ kind: 'hash' }, 'alice', OTHER_KEY)).not.toBe(h);
    expect(maskString({ kind: 'hash' }, 'bob', KEY)).not.toBe(h);
  });
});

describe('maskers by type and format', () => {
  const email = { kind: 'email' } as const;
  it('text-like types are masked the same in text and binary', () => {
    for (const oid of [TypeOid.text, TypeOid.varchar, TypeOid.bpchar, TypeOid.name]) {
      for (const f of [0, 1] as const) expect(run(email, oid, f, Buffer.from('x@y.z'))?.toString()).toBe('***@y.z');
    }
    const citext = compileMasker(email, typeHandling(99999, new Set([99999])), 1, KEY);
    expect(citext(Buffer.from('x@y.z'), 0, 5)?.toString()).toBe('***@y.z');
  });

  it('json stays valid JSON; binary jsonb keeps its version byte', () => {
    const text = run({ kind: 'redact', text: '***' }, TypeOid.json, 0, Buffer.from('{"a":"x@y.z"}'));
    expect(JSON.parse(text!.toString())).toBe('***');
    const mail = run(email, TypeOid.jsonb, 0, Buffer.from('"x@y.z"'));
    expect(JSON.parse(mail!.toString())).toBe('***@y.z');
    const bin = run(email, TypeOid.jsonb, 1, Buffer.concat([Buffer.from([1]), Buffer.from('"x@y.z"')]));
    expect(bin![0]).toBe(1);
    expect(JSON.parse(bin!.subarray(1).toString())).toBe('***@y.z');
    const unknownVersion = run(email, TypeOid.jsonb, 1, Buffer.concat([Buffer.from([2]), Buffer.from('"x@y.z"')]));
    expect(unknownVersion!.toString()).not.toContain('y.z');
  });

  it('uuid stays a valid uuid; hash agrees between text and binary', () => {
    const u = '3f2504e0-4f89-11d3-9a0c-0305e82c3301';
    const bin = Buffer.from(u.replaceAll('-', ''), 'hex');
    expect(run({ kind: 'redact', text: '***' }, TypeOid.uuid, 0, Buffer.from(u))!.toString()).toBe('00000000-0000-0000-0000-000000000000');
    expect(run({ kind: 'redact', text: '***' }, TypeOid.uuid, 1, bin)).toEqual(Buffer.alloc(16));
    const ht = run({ kind: 'hash' }, TypeOid.uuid, 0, Buffer.from(u.toUpperCase()))!.toString();
    const hb = run({ kind: 'hash' }, TypeOid.uuid, 1, bin)!;
    expect(ht).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(ht.replaceAll('-', '')).toBe(hb.toString('hex'));
    expect(ht).not.toBe(u);
    expect(run({ kind: 'partial', first: 4, last: 0, fill: '*' }, TypeOid.uuid, 0, Buffer.from(u))!.toString()).toBe('3f250000-0000-0000-0000-000000000000');
  });

  it('integers: hash keeps width and agrees between formats; other methods give NULL', () => {
    const t = run({ kind: 'hash' }, TypeOid.int4, 0, Buffer.from('42'))!.toString();
    const b4 = Buffer.alloc(4);
    b4.writeInt32BE(42);
    const bin = run({ kind: 'hash' }, TypeOid.int4, 1, b4)!;
    expect(bin.length).toBe(4);
    expect(String(bin.readInt32BE(0))).toBe(t);
    expect(t).not.toBe('42');
    const b8 = Buffer.alloc(8);
    b8.writeBigInt64BE(42n);
    expect(run({ kind: 'hash' }, TypeOid.int8, 1, b8)!.length).toBe(8);
    expect(run({ kind: 'redact', text: '***' }, TypeOid.int4, 0, Buffer.from('42'))).toBeNull();
  });

  it('other types become NULL under every method', () => {
    for (const m of [{ kind: 'hash' }, { kind: 'redact', text: 'x' }, { kind: 'email' }] as MaskMethod[]) {
      expect(run(m, 1700 /* numeric */, 0, Buffer.from('12.5'))).toBeNull();
      expect(run(m, TypeOid.bytea, 1, Buffer.from([1, 2]))).toBeNull();
      expect(run(m, 1009 /* text[] */, 0, Buffer.from('{a,b}'))).toBeNull();
    }
  });

  it('redact returns one shared constant (no allocation per row)', () => {
    const m = compileMasker({ kind: 'redact', text: '***' }, 'text', 0, KEY);
    expect(m(Buffer.from('a'), 0, 1)).toBe(m(Buffer.from('b'), 0, 1));
  });
});

describe('mask key', () => {
  it('is created 0600 on first use and read back after', () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'sluice-key-')), 'data');
    const k = loadOrCreateMaskKey(dir);
    expect(k.length).toBe(32);
    expect(statSync(join(dir, 'masking.key')).mode & 0o777).toBe(0o600);
    expect(loadOrCreateMaskKey(dir)).toEqual(k);
    expect(readFileSync(join(dir, 'masking.key'))).toEqual(k);
  });

  it('refuses a key others can read, or of the wrong size', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-key-'));
    loadOrCreateMaskKey(dir);
    chmodSync(join(dir, 'masking.key'), 0o644);
    expect(() => loadOrCreateMaskKey(dir)).toThrow(MaskKeyError);
    writeFileSync(join(dir, 'masking.key'), Buffer.alloc(5), { mode: 0o600 });
    chmodSync(join(dir, 'masking.key'), 0o600);
    expect(() => loadOrCreateMaskKey(dir)).toThrow(/5 bytes/);
  });
});

describe('byte-level text maskers', () => {
  it('give exactly what maskString gives, for ASCII and non-ASCII values and edge cases', () => {
    const values = ['alice@example.com', 'a@b@corp.io', 'no-domain', 'trailing@', '@lead', '', 'x', 'jürgen@exämple.de', '😀@😀.io',
      '4111222233334444', '12345', 'ab', '😀ab😀', 'åbcdefgh'];
    const methods = [
      { kind: 'email' }, { kind: 'partial', first: 2, last: 3, fill: '*' }, { kind: 'partial', first: 0, last: 4, fill: '•' },
      { kind: 'partial', first: 1, last: 1, fill: 'xy' }, { kind: 'partial', first: 0, last: 0, fill: '#' },
    ] as const;
    for (const m of methods) {
      const masker = compileMasker(m, 'text', 0, KEY);
      for (const v of values) {
        // The field sits inside a larger buffer, as it does in a DataRow: neighbours must not leak in.
        const buf = Buffer.concat([Buffer.from('@pre@'), Buffer.from(v, 'utf8'), Buffer.from('@post')]);
        const out = masker(buf, 5, 5 + Buffer.byteLength(v));
        expect(out?.toString('utf8'), `${JSON.stringify(m)} ${v}`).toBe(maskString(m, v, KEY));
      }
    }
  });
});
