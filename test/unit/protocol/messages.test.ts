import { DatabaseError, serialize } from 'pg-protocol';
import { Parser } from 'pg-protocol/dist/parser.js';
import type { BackendMessage } from 'pg-protocol/dist/messages.js';
import { describe, expect, it } from 'vitest';
import {
  authRequest, backendKeyData, cancelRequest, errorResponse, negotiateProtocolVersion, parseErrorFields,
  parseStartupPacket, passwordMessage, readCString, readyForQuery, sslRequest, startupMessage, terminate,
} from '../../../src/protocol/messages.js';

/** A startup-phase packet: length word, protocol code, body. */
function packet(code: number, body: Buffer = Buffer.alloc(0)): Buffer {
  const b = Buffer.alloc(8 + body.length);
  b.writeInt32BE(8 + body.length, 0);
  b.writeInt32BE(code, 4);
  body.copy(b, 8);
  return b;
}
const PROTO = (major: number, minor: number) => (major << 16) | minor;
const z = (...parts: string[]) => Buffer.from(parts.map((p) => p + '\0').join(''), 'utf8');

/** Decodes backend frames with node-postgres' own parser: an implementation independent of ours. */
function decode(frames: Buffer): BackendMessage[] {
  const out: BackendMessage[] = [];
  new Parser().parse(frames, (m) => out.push(m));
  return out;
}

describe('parseStartupPacket', () => {
  it('recognises SSLRequest, GSSENCRequest and CancelRequest', () => {
    expect(parseStartupPacket(sslRequest())).toEqual({ kind: 'ssl' });
    expect(parseStartupPacket(packet(80877104))).toEqual({ kind: 'gssenc' });
    expect(parseStartupPacket(cancelRequest(4242, -123456))).toEqual({ kind: 'cancel', pid: 4242, secret: -123456 });
    // node-postgres' own CancelRequest decodes the same way
    expect(parseStartupPacket(serialize.cancel(77, 88))).toEqual({ kind: 'cancel', pid: 77, secret: 88 });
  });

  it('refuses special requests of the wrong size', () => {
    expect(parseStartupPacket(packet(80877103, Buffer.alloc(4)))).toMatchObject({ kind: 'invalid' });
    expect(parseStartupPacket(packet(80877104, Buffer.alloc(1)))).toMatchObject({ kind: 'invalid' });
    expect(parseStartupPacket(packet(80877102, Buffer.alloc(4)))).toMatchObject({ kind: 'invalid', reason: expect.stringMatching(/CancelRequest/) });
  });

  it('decodes a StartupMessage (ours and node-postgres\') into its parameters', () => {
    const p = parseStartupPacket(startupMessage({ user: 'agent', database: 'app', application_name: 'café ✓' }));
    expect(p).toEqual({ kind: 'startup', minor: 0, params: new Map([['user', 'agent'], ['database', 'app'], ['application_name', 'café ✓']]) });
    // pg-protocol appends client_encoding=UTF8 itself
    const q = parseStartupPacket(serialize.startup({ user: 'u', database: 'd' }));
    expect(q.kind === 'startup' && Object.fromEntries(q.params)).toEqual({ user: 'u', database: 'd', client_encoding: 'UTF8' });
  });

  it('accepts an empty parameter list and empty values', () => {
    expect(parseStartupPacket(packet(PROTO(3, 0), Buffer.from([0])))).toEqual({ kind: 'startup', minor: 0, params: new Map() });
    const p = parseStartupPacket(packet(PROTO(3, 0), Buffer.concat([z('user', 'a', 'options', ''), Buffer.from([0])])));
    expect(p.kind === 'startup' && p.params.get('options')).toBe('');
  });

  it('reports protocol 3.2 as startup with its minor version (the session then negotiates down to 3.0)', () => {
    expect(parseStartupPacket(packet(PROTO(3, 2), Buffer.concat([z('user', 'a'), Buffer.from([0])])))).toMatchObject({ kind: 'startup', minor: 2 });
  });

  it('refuses protocol 2.0 and 4.0', () => {
    expect(parseStartupPacket(packet(PROTO(2, 0), Buffer.concat([z('user', 'a'), Buffer.from([0])])))).toEqual({
      kind: 'invalid', reason: expect.stringMatching(/unsupported frontend protocol 2\.0/),
    });
    expect(parseStartupPacket(packet(PROTO(4, 0), Buffer.from([0])))).toMatchObject({ kind: 'invalid' });
    // An arbitrary number (what garbage decodes to) is no protocol either.
    expect(parseStartupPacket(packet(0x12345678, Buffer.from([0])))).toMatchObject({ kind: 'invalid' });
  });

  it('refuses a parameter given twice', () => {
    const p = parseStartupPacket(packet(PROTO(3, 0), Buffer.concat([z('user', 'a', 'database', 'x', 'user', 'b'), Buffer.from([0])])));
    expect(p).toEqual({ kind: 'invalid', reason: 'startup parameter "user" given twice' });
  });

  it('refuses a packet without the final terminator', () => {
    expect(parseStartupPacket(packet(PROTO(3, 0), z('user', 'a')))).toEqual({ kind: 'invalid', reason: 'startup packet is not terminated' });
    expect(parseStartupPacket(packet(PROTO(3, 0)))).toMatchObject({ kind: 'invalid' });
  });

  it('refuses an unterminated name, a name without value, and bytes after the terminator', () => {
    expect(parseStartupPacket(packet(PROTO(3, 0), Buffer.from('user')))).toMatchObject({ kind: 'invalid', reason: expect.stringMatching(/name/) });
    expect(parseStartupPacket(packet(PROTO(3, 0), z('user')))).toMatchObject({ kind: 'invalid', reason: expect.stringMatching(/no value/) });
    expect(parseStartupPacket(packet(PROTO(3, 0), Buffer.from('user\0a')))).toMatchObject({ kind: 'invalid', reason: expect.stringMatching(/no value/) });
    expect(parseStartupPacket(packet(PROTO(3, 0), Buffer.concat([z('user', 'a'), Buffer.from([0, 0x41])])))).toMatchObject({
      kind: 'invalid', reason: expect.stringMatching(/after the end/),
    });
  });
});

describe('errorResponse / parseErrorFields', () => {
  const full = { severity: 'FATAL' as const, code: '08P01', message: 'invalid message length 3 — café', detail: 'the detail', hint: 'do this' };

  it('round-trips every field', () => {
    const frame = errorResponse(full);
    expect(frame[0]).toBe(0x45);
    expect(frame.readInt32BE(1)).toBe(frame.length - 1);
    expect(parseErrorFields(frame)).toEqual({ S: 'FATAL', V: 'FATAL', C: '08P01', M: full.message, D: 'the detail', H: 'do this' });
  });

  it('omits absent detail and hint', () => {
    expect(parseErrorFields(errorResponse({ severity: 'ERROR', code: '42501', message: 'no' }))).toEqual({ S: 'ERROR', V: 'ERROR', C: '42501', M: 'no' });
  });

  it('is read by node-postgres as the same error', () => {
    const [m] = decode(errorResponse(full));
    expect(m).toBeInstanceOf(DatabaseError);
    expect(m).toMatchObject({ severity: 'FATAL', code: '08P01', message: full.message, detail: 'the detail', hint: 'do this' });
  });

  it('builds a NoticeResponse with the notice code', () => {
    const frame = errorResponse({ severity: 'NOTICE', code: '00000', message: 'hi' }, 0x4e);
    expect(frame[0]).toBe(0x4e);
    expect(decode(frame)[0]).toMatchObject({ name: 'notice', message: 'hi' });
  });

  it('does not throw on a truncated frame', () => {
    const frame = errorResponse(full);
    for (let cut = 5; cut < frame.length; cut++) expect(() => parseErrorFields(frame.subarray(0, cut))).not.toThrow();
    expect(parseErrorFields(frame.subarray(0, 12))).toEqual({ S: 'FATAL' });
  });
});

describe('backend message builders', () => {
  it('produce frames node-postgres decodes', () => {
    const msgs = decode(Buffer.concat([
      authRequest(3), authRequest(0), backendKeyData(123, -7), readyForQuery('I'), negotiateProtocolVersion(0, ['_pq_.x']),
    ]));
    expect(msgs.map((m) => m.name)).toEqual([
      'authenticationCleartextPassword', 'authenticationOk', 'backendKeyData', 'readyForQuery', expect.any(String),
    ]);
    expect(msgs[2]).toMatchObject({ processID: 123, secretKey: -7 });
    expect(msgs[3]).toMatchObject({ status: 'I' });
  });

  it('NegotiateProtocolVersion carries the newest minor and the unsupported options', () => {
    const f = negotiateProtocolVersion(0, ['_pq_.a', '_pq_.b']);
    expect(f[0]).toBe(0x76);
    expect(f.readInt32BE(1)).toBe(f.length - 1);
    expect(f.readInt32BE(5)).toBe(0);
    expect(f.readInt32BE(9)).toBe(2);
    expect(f.subarray(13).toString()).toBe('_pq_.a\0_pq_.b\0');
  });
});

describe('frontend message builders', () => {
  it('match node-postgres byte for byte', () => {
    expect(startupMessage({ user: 'u', database: 'd', client_encoding: 'UTF8' })).toEqual(serialize.startup({ user: 'u', database: 'd' }));
    expect(sslRequest()).toEqual(serialize.requestSsl());
    expect(cancelRequest(1, 2)).toEqual(serialize.cancel(1, 2));
    expect(passwordMessage(Buffer.from('pw\0'))).toEqual(serialize.password('pw'));
    expect(terminate()).toEqual(serialize.end());
  });
});

describe('readCString', () => {
  it('reads up to the NUL and respects the end bound', () => {
    const b = Buffer.from('ab\0cd\0');
    expect(readCString(b, 0)).toEqual(['ab', 3]);
    expect(readCString(b, 3)).toEqual(['cd', 6]);
    expect(readCString(b, 3, 5)).toBeNull(); // the NUL at 5 is outside the bound
    expect(readCString(Buffer.from('abc'), 0)).toBeNull();
  });
});
