import { serialize } from 'pg-protocol';
import { describe, expect, it } from 'vitest';
import { ExtendedState } from '../../../src/proxy/extended-state.js';

function bindFrame(formats: number[], values: (Buffer | null)[], results: number[] = []): Buffer {
  const parts: Buffer[] = [Buffer.from('p1\0s1\0')];
  const i16 = (n: number) => { const b = Buffer.alloc(2); b.writeInt16BE(n); return b; };
  const i32 = (n: number) => { const b = Buffer.alloc(4); b.writeInt32BE(n); return b; };
  parts.push(i16(formats.length), ...formats.map(i16), i16(values.length));
  for (const v of values) parts.push(v === null ? i32(-1) : Buffer.concat([i32(v.length), v]));
  parts.push(i16(results.length), ...results.map(i16));
  const body = Buffer.concat(parts);
  return Buffer.concat([Buffer.from('B'), i32(4 + body.length), body]);
}

function paramsOf(frame: Buffer): readonly (string | null)[] | undefined | false {
  const st = new ExtendedState();
  st.define('s1', { text: 'SELECT $1', audit: null });
  const b = ExtendedState.readBind(frame);
  if (!b) return false;
  st.bind(b);
  return st.execute(Buffer.from([0x45, 0, 0, 0, 12, 0x70, 0x31, 0, 0, 0, 0, 0]))!.entry.params;
}

describe('ExtendedState.bind parameters', () => {
  it('reads text, binary (as \\x hex) and NULL values with one, per-value or no format codes', () => {
    expect(paramsOf(bindFrame([], [Buffer.from('a'), null]))).toEqual(['a', null]);
    expect(paramsOf(bindFrame([1], [Buffer.from([1, 2]), Buffer.from([255])]))).toEqual(['\\x0102', '\\xff']);
    expect(paramsOf(bindFrame([0, 1], [Buffer.from('ü'), Buffer.from([0])], [1]))).toEqual(['ü', '\\x00']);
  });

  it('matches what node-postgres sends', () => {
    const f = serialize.bind({ portal: 'p1', statement: 's1', values: ['x', null, '7'] });
    expect(paramsOf(f)).toEqual(['x', null, '7']);
  });

  it('refuses malformed Binds: truncated value, wrong format count, trailing bytes', () => {
    const good = bindFrame([], [Buffer.from('abc')]);
    const truncated = Buffer.from(good.subarray(0, good.length - 3));
    truncated.writeInt32BE(truncated.length - 1, 1);
    expect(paramsOf(truncated)).toBe(false);
    expect(paramsOf(bindFrame([0, 0, 0], [Buffer.from('a')]))).toBe(false);
    const trailing = Buffer.concat([good, Buffer.from([0])]);
    trailing.writeInt32BE(trailing.length - 1, 1);
    expect(paramsOf(trailing)).toBe(false);
  });
});
