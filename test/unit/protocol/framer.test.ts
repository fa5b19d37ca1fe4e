import { serialize } from 'pg-protocol';
import { Parser } from 'pg-protocol/dist/parser.js';
import { describe, expect, it } from 'vitest';
import { Framer, writeFrames, type FrameError } from '../../../src/protocol/framer.js';
import { startupMessage } from '../../../src/protocol/messages.js';

/**
 * A recorded-style client stream: what node-postgres sends for a session that logs in, runs a simple query,
 * an extended-protocol round trip, a 70 KB statement and terminates. Built by pg-protocol's serializer so the
 * frames are not shaped by our own builders.
 */
const messages: Buffer[] = [
  startupMessage({ user: 'agent', database: 'app', application_name: 'framer-test', client_encoding: 'UTF8' }),
  serialize.password('sk_not-a-real-secret'),
  serialize.query('SELECT 1'),
  serialize.parse({ name: 's1', text: 'SELECT $1::int + 1', types: [23] }),
  serialize.bind({ portal: 'p1', statement: 's1', values: ['41'] }),
  serialize.describe({ type: 'P', name: 'p1' }),
  serialize.execute({ portal: 'p1', rows: 0 }),
  serialize.sync(), // empty body: the whole frame is its 5-byte header
  serialize.flush(),
  serialize.query(`SELECT '${'x'.repeat(70 * 1024)}'`),
  serialize.close({ type: 'S', name: 's1' }),
  serialize.sync(),
  serialize.end(),
];

/** A byte stream made of whole messages, with where each starts; `startup`: the first is a StartupMessage. */
interface Stream {
  messages: Buffer[];
  bytes: Buffer;
  starts: number[];
  startup: boolean;
}
function streamOf(messages: Buffer[], startup: boolean): Stream {
  const starts: number[] = [];
  messages.reduce((at, m) => (starts.push(at), at + m.length), 0);
  return { messages, bytes: Buffer.concat(messages), starts, startup };
}
const client = streamOf(messages, true);
const stream = client.bytes;

/** A copy of `b` in an ArrayBuffer of its own (Buffer.from would share Node's pool for small sizes). */
function own(b: Buffer): Buffer {
  const out = Buffer.from(new ArrayBuffer(b.length));
  b.copy(out);
  return out;
}

interface Got {
  frame: Buffer;
  chunk: Buffer;
  chunkStart: number;
}

/**
 * Feeds `chunks` (consecutive pieces of `s.bytes`) to a framer and returns every frame with the chunk that
 * completed it. A client stream starts in startup mode and switches to typed after the first frame, as the
 * client session does; a server stream is typed from the first byte, as the upstream side is.
 */
function feed(chunks: Buffer[], s: Stream = client): Got[] {
  const framer = new Framer(1 << 20, s.startup ? 'startup' : 'typed');
  const got: Got[] = [];
  let chunkStart = 0;
  for (const chunk of chunks) {
    const err = framer.push(chunk, (frame) => {
      if (got.length === 0 && s.startup) framer.setTyped();
      got.push({ frame, chunk, chunkStart });
    });
    // Plain throws: vitest's expect is too slow for ~70k iterations.
    if (err) throw new Error(`unexpected frame error ${JSON.stringify(err)}`);
    chunkStart += chunk.length;
  }
  if (framer.buffered !== 0) throw new Error(`${framer.buffered} bytes left buffered at the end`);
  return got;
}

/** Frames equal the messages sent; a frame that lies inside one chunk is a view of that chunk (no copy). */
function check(got: Got[], s: Stream = client): void {
  const { messages: sent, starts } = s;
  if (got.length !== sent.length) throw new Error(`got ${got.length} frames, sent ${sent.length}`);
  for (let i = 0; i < sent.length; i++) {
    const { frame, chunk, chunkStart } = got[i]!;
    if (!frame.equals(sent[i]!)) throw new Error(`frame ${i} differs from the message sent`);
    const inside = starts[i]! >= chunkStart && starts[i]! + frame.length <= chunkStart + chunk.length;
    if (inside && (frame.buffer !== chunk.buffer || frame.byteOffset !== chunk.byteOffset + starts[i]! - chunkStart)) {
      throw new Error(`frame ${i} lies inside one chunk but was copied`);
    }
  }
}

/** Deterministic PRNG (mulberry32) so a failing chunking can be reproduced from its seed. */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('Framer on a realistic stream', () => {
  it('yields the messages as the same bytes when the stream arrives in one chunk, all zero-copy', () => {
    const chunk = own(stream);
    const got = feed([chunk]);
    check(got);
    for (const g of got) expect(g.frame.buffer).toBe(chunk.buffer);
  });

  it('yields identical frames in order for a split at every byte offset', () => {
    // Views of one buffer keep 70k iterations cheap; `check` still compares byteOffsets, so a copy is caught.
    for (let cut = 1; cut < stream.length; cut++) {
      check(feed([stream.subarray(0, cut), stream.subarray(cut)]));
    }
  });

  it('yields identical frames when fed byte by byte', () => {
    const chunks: Buffer[] = [];
    for (let i = 0; i < stream.length; i++) chunks.push(stream.subarray(i, i + 1));
    check(feed(chunks));
  });

  it('yields identical frames for random chunkings (separate buffers per chunk)', () => {
    for (let seed = 1; seed <= 200; seed++) {
      const rand = rng(seed);
      const chunks: Buffer[] = [];
      // Mostly small pieces with the odd big one, so headers, bodies and whole runs of frames all get split.
      for (let at = 0; at < stream.length; ) {
        const size = rand() < 0.1 ? 1 + Math.floor(rand() * 80_000) : 1 + Math.floor(rand() * 40);
        chunks.push(own(stream.subarray(at, at + size)));
        at += size;
      }
      check(feed(chunks));
    }
  });

  it('holds an incomplete frame (buffered) and hands it out only when complete', () => {
    const framer = new Framer(1 << 20, 'typed');
    const q = serialize.query('SELECT 42');
    const frames: Buffer[] = [];
    expect(framer.push(q.subarray(0, 3), (f) => frames.push(f))).toBeNull();
    expect(framer.push(q.subarray(3, 9), (f) => frames.push(f))).toBeNull();
    expect(frames).toHaveLength(0);
    expect(framer.buffered).toBe(9);
    expect(framer.push(q.subarray(9), (f) => frames.push(f))).toBeNull();
    expect(frames).toEqual([q]);
    expect(framer.buffered).toBe(0);
  });
});

// Backend messages, built here: pg-protocol serializes only frontend messages. Layouts from
// https://www.postgresql.org/docs/current/protocol-message-formats.html
const i16 = (n: number): Buffer => { const b = Buffer.alloc(2); b.writeInt16BE(n); return b; };
const i32 = (n: number): Buffer => { const b = Buffer.alloc(4); b.writeInt32BE(n); return b; };
const cstr = (s: string): Buffer => Buffer.from(`${s}\0`, 'utf8');
/** Code byte, int32 length (itself included, code excluded), body. */
const backend = (code: string, ...body: Buffer[]): Buffer => {
  const payload = Buffer.concat(body);
  return Buffer.concat([Buffer.from(code, 'latin1'), i32(4 + payload.length), payload]);
};
const column = (name: string, typeOid: number, typlen: number): Buffer =>
  Buffer.concat([cstr(name), i32(16384), i16(1), i32(typeOid), i16(typlen), i32(-1), i16(0)]);
const value = (v: string | null): Buffer => (v === null ? i32(-1) : Buffer.concat([i32(Buffer.byteLength(v)), Buffer.from(v, 'utf8')]));
const fields = (f: Record<string, string>): Buffer => Buffer.concat([...Object.entries(f).map(([k, v]) => cstr(k + v)), Buffer.from([0])]);
const copyResponse = (code: 'G' | 'H'): Buffer => backend(code, Buffer.from([0]), i16(2), i16(0), i16(0));
const MULTIBYTE = 'Zoë · 東京 · 🐘';

/** What a server sends for a login, a query with rows, errors, notices, a COPY each way and an extended round trip. */
const serverMessages: [name: string, frame: Buffer][] = [
  ['authenticationOk', backend('R', i32(0))],
  ['parameterStatus', backend('S', cstr('server_version'), cstr('15.8'))],
  ['backendKeyData', backend('K', i32(4242), i32(-559038737))],
  ['readyForQuery', backend('Z', Buffer.from('I'))],
  ['rowDescription', backend('T', i16(3), column('id', 23, 4), column('name', 25, -1), column('note', 25, -1))],
  ['dataRow', backend('D', i16(3), value('42'), value(null), value(MULTIBYTE))],
  ['commandComplete', backend('C', cstr('SELECT 1'))],
  ['error', backend('E', fields({ S: 'ERROR', V: 'ERROR', C: '42P01', M: `relation "${MULTIBYTE}" does not exist`, P: '15' }))],
  ['notice', backend('N', fields({ S: 'NOTICE', V: 'NOTICE', C: '00000', M: 'table "t" does not exist, skipping' }))],
  ['notification', backend('A', i32(4242), cstr('jobs'), cstr(`payload ${MULTIBYTE}`))],
  ['copyInResponse', copyResponse('G')],
  ['copyOutResponse', copyResponse('H')],
  ['copyData', backend('d', Buffer.from(`1\t${MULTIBYTE}\n`, 'utf8'))],
  ['copyDone', backend('c')], // empty body: the whole frame is its 5-byte header
  ['parseComplete', backend('1')],
  ['bindComplete', backend('2')],
  ['emptyQuery', backend('I')],
  ['dataRow', backend('D', i16(1), value('y'.repeat(100 * 1024)))], // > 64 KiB
  ['commandComplete', backend('C', cstr('SELECT 2'))],
  ['readyForQuery', backend('Z', Buffer.from('T'))],
];
const server = streamOf(serverMessages.map(([, f]) => f), false);

describe('Framer on a server (backend) stream', () => {
  it('the built stream is what pg-protocol parses as those messages (the builder is right)', () => {
    const names: string[] = [];
    new Parser().parse(server.bytes, (m) => names.push(m.name));
    expect(names).toEqual(serverMessages.map(([n]) => n));
    expect(server.bytes.length).toBeGreaterThan(64 * 1024);
  });

  it('yields the messages as the same bytes when the stream arrives in one chunk, all zero-copy', () => {
    const chunk = own(server.bytes);
    const got = feed([chunk], server);
    check(got, server);
    for (const g of got) expect(g.frame.buffer).toBe(chunk.buffer);
  });

  it('yields identical frames in order for a split at every byte offset', () => {
    const b = server.bytes;
    for (let cut = 1; cut < b.length; cut++) check(feed([b.subarray(0, cut), b.subarray(cut)], server), server);
  });

  it('yields identical frames when fed byte by byte', () => {
    const b = server.bytes;
    const chunks: Buffer[] = [];
    for (let i = 0; i < b.length; i++) chunks.push(b.subarray(i, i + 1));
    check(feed(chunks, server), server);
  });
});

describe('Framer limits (checked from the header, before any body byte)', () => {
  const typedHeader = (code: string, declared: number): Buffer => {
    const b = Buffer.alloc(5);
    b.write(code, 0, 'latin1');
    b.writeInt32BE(declared, 1);
    return b;
  };
  const startupHeader = (declared: number): Buffer => {
    const b = Buffer.alloc(8);
    b.writeInt32BE(declared, 0);
    b.writeInt32BE(196608, 4);
    return b;
  };
  const push = (framer: Framer, ...chunks: Buffer[]): FrameError | null => {
    let err: FrameError | null = null;
    for (const c of chunks) err = framer.push(c, () => { throw new Error('no frame expected'); });
    return err;
  };

  it('reports a typed length below 4 as bad_length', () => {
    expect(push(new Framer(4096, 'typed'), typedHeader('Q', 3))).toEqual({ kind: 'bad_length', declared: 3, limit: 4 });
    expect(push(new Framer(4096, 'typed'), typedHeader('Q', 0))).toMatchObject({ kind: 'bad_length' });
  });

  it('reports a negative (>= 2^31 unsigned) length as an error, never as a frame to wait for', () => {
    expect(push(new Framer(4096, 'typed'), typedHeader('Q', -1))).not.toBeNull();
    expect(push(new Framer(4096, 'typed'), typedHeader('Q', -0x80000000))).not.toBeNull();
  });

  it('reports a message over maxMessageBytes as too_large from the 5-byte header alone', () => {
    expect(push(new Framer(4096, 'typed'), typedHeader('Q', 5000))).toEqual({ kind: 'too_large', declared: 5000, limit: 4096 });
  });

  it('also when the header itself arrives split', () => {
    const h = typedHeader('P', 1_000_000);
    expect(push(new Framer(4096, 'typed'), h.subarray(0, 2), h.subarray(2))).toMatchObject({ kind: 'too_large', declared: 1_000_000 });
    const bad = typedHeader('Q', 2);
    expect(push(new Framer(4096, 'typed'), bad.subarray(0, 4), bad.subarray(4))).toMatchObject({ kind: 'bad_length', declared: 2 });
  });

  it('accepts a message just under the limit and waits for its body', () => {
    const framer = new Framer(4096, 'typed');
    expect(push(framer, typedHeader('Q', 4000))).toBeNull();
    expect(framer.buffered).toBe(5);
  });

  it('refuses a startup packet over 10000 bytes as too_large from its length word alone', () => {
    expect(push(new Framer(1 << 20, 'startup'), startupHeader(10_001).subarray(0, 4))).toEqual({ kind: 'too_large', declared: 10_001, limit: 10_000 });
    // HTTP and TLS records read as huge lengths: refused without waiting for a body.
    expect(push(new Framer(1 << 20, 'startup'), Buffer.from('GET / HTTP/1.1\r\n'))).toMatchObject({ kind: 'too_large' });
    expect(push(new Framer(1 << 20, 'startup'), Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00]))).toMatchObject({ kind: 'too_large' });
  });

  it('refuses a startup packet shorter than 8 bytes as bad_length', () => {
    expect(push(new Framer(1 << 20, 'startup'), startupHeader(7))).toEqual({ kind: 'bad_length', declared: 7, limit: 8 });
  });

  it('accepts a startup packet of exactly 10000 bytes', () => {
    const framer = new Framer(1 << 20, 'startup');
    const big = Buffer.alloc(10_000);
    big.writeInt32BE(10_000, 0);
    const frames: Buffer[] = [];
    expect(framer.push(big, (f) => frames.push(f))).toBeNull();
    expect(frames).toHaveLength(1);
  });
});

describe('Framer.setTyped mid-stream', () => {
  it('reads the bytes after the switching frame in the new mode, within the same chunk', () => {
    const ssl = Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]);
    const start = startupMessage({ user: 'a' });
    const q = serialize.query('SELECT 1');
    const framer = new Framer(1 << 20, 'startup');
    const frames: Buffer[] = [];
    const err = framer.push(Buffer.concat([ssl, start, q, serialize.sync()]), (f) => {
      frames.push(f);
      if (frames.length === 2) framer.setTyped(); // after the StartupMessage, not after SSLRequest
    });
    expect(err).toBeNull();
    expect(frames).toEqual([ssl, start, q, serialize.sync()]);
  });

  it('without setTyped the same bytes are read as startup packets (the mode matters)', () => {
    const framer = new Framer(1 << 20, 'startup');
    // 'Q' 0x00 0x00 0x00 as a startup length word is 0x51000000: far over 10000.
    expect(framer.push(Buffer.concat([startupMessage({ user: 'a' }), serialize.query('SELECT 1')]), () => {})).toMatchObject({ kind: 'too_large' });
  });
});

describe('writeFrames', () => {
  const recorder = (answers: boolean[] = []) => {
    const writes: Buffer[] = [];
    return { writes, write: (b: Buffer) => (writes.push(b), answers.shift() ?? true) };
  };
  const chunk = own(Buffer.concat([serialize.parse({ text: 'SELECT 1' }), serialize.bind({}), serialize.execute({}), serialize.sync()]));
  const frames: Buffer[] = [];
  new Framer(1 << 20, 'typed').push(chunk, (f) => frames.push(f));

  it('merges contiguous frames of one chunk into ONE write of the original bytes', () => {
    const out = recorder();
    expect(writeFrames(out, frames)).toBe(true);
    expect(out.writes).toHaveLength(1);
    expect(out.writes[0]!.equals(chunk)).toBe(true);
    expect(out.writes[0]!.buffer).toBe(chunk.buffer); // a view, not a copy
  });

  it('writes non-contiguous frames separately, in order', () => {
    const out = recorder();
    writeFrames(out, [frames[0]!, frames[2]!, frames[3]!]);
    expect(out.writes.map((w) => w.toString('latin1'))).toEqual([
      frames[0]!.toString('latin1'),
      Buffer.concat([frames[2]!, frames[3]!]).toString('latin1'),
    ]);
  });

  it('does not merge frames given out of order even though they are adjacent in memory', () => {
    const out = recorder();
    writeFrames(out, [frames[1]!, frames[0]!]);
    expect(out.writes).toEqual([frames[1], frames[0]]);
  });

  it('writes frames of different chunks separately', () => {
    const other = own(serialize.sync());
    const out = recorder();
    writeFrames(out, [frames[3]!, other]);
    expect(out.writes).toHaveLength(2);
  });

  it('returns false when a write returns false, and still writes everything', () => {
    const out = recorder([false, true]);
    expect(writeFrames(out, [frames[0]!, frames[2]!])).toBe(false);
    expect(out.writes).toHaveLength(2);
    const late = recorder([true, false]);
    expect(writeFrames(late, [frames[0]!, frames[2]!])).toBe(false);
  });

  it('writes nothing for no frames', () => {
    const out = recorder();
    expect(writeFrames(out, [])).toBe(true);
    expect(out.writes).toHaveLength(0);
  });
});
