/**
 * Rewrites DataRow frames under a mask plan. Runs once per row of a masked result, so it allocates only the
 * output frame (and whatever a non-constant method allocates for its own value).
 *
 * DataRow ('D'): Int32 length (itself included), Int16 field count, then per field Int32 length (-1 = NULL)
 * and that many bytes. https://www.postgresql.org/docs/current/protocol-message-formats.html
 */
import type { FieldMasker } from './methods.js';

const DATA_ROW = 0x44; // D
const HEADER = 7; // code, length, field count

/**
 * Copies src[start, end) to dst at `at`; returns the bytes copied. Buffer#copy validates its arguments and crosses
 * into C++ on every call, which costs more than the copy itself for the few bytes of a masked field or a short run
 * of fields (measured with bench/masking.ts: ~40% of the per-row time was in Buffer#copy), so short ranges are
 * copied by a loop.
 */
export function copyBytes(src: Uint8Array, start: number, end: number, dst: Uint8Array, at: number): number {
  const n = end - start;
  if (n > 64) return (src as Buffer).copy(dst, at, start, end);
  for (let i = 0; i < n; i++) dst[at + i] = src[start + i]!;
  return n;
}

/** A frame that does not match the plan or is not a well-formed DataRow: the caller must not forward it. */
export class DataRowError extends Error {}

// Per-call scratch, reused: the rewrite is synchronous, so one set serves the whole process.
let starts = new Int32Array(64);
let lengths = new Int32Array(64);
let outs: (Buffer | null | undefined)[] = [];

function grow(n: number): void {
  if (starts.length >= n) return;
  const size = Math.max(n, starts.length * 2);
  starts = new Int32Array(size);
  lengths = new Int32Array(size);
}

/**
 * Returns the frame with each masked field replaced. `maskers[i]` null passes field i unchanged. When no field
 * needs changing (no masker, or every masked field is already NULL) the same Buffer is returned.
 * Throws DataRowError when the frame is malformed or its field count differs from the plan.
 */
export function rewriteDataRow(frame: Buffer, maskers: readonly (FieldMasker | null)[]): Buffer {
  if (frame.length < HEADER || frame[0] !== DATA_ROW || frame.readInt32BE(1) !== frame.length - 1) {
    throw new DataRowError('not a well-formed DataRow frame');
  }
  const n = frame.readInt16BE(5);
  if (n !== maskers.length) throw new DataRowError(`DataRow has ${n} fields, the mask plan ${maskers.length}`);
  grow(n);
  let at = HEADER;
  let changed = false;
  let size = HEADER;
  for (let i = 0; i < n; i++) {
    if (at + 4 > frame.length) throw new DataRowError('DataRow ends inside a field length');
    const len = frame.readInt32BE(at);
    at += 4;
    if (len < -1 || (len > 0 && at + len > frame.length)) throw new DataRowError('DataRow field length out of bounds');
    starts[i] = at;
    lengths[i] = len;
    const masker = maskers[i];
    if (masker && len >= 0) {
      const out = masker(frame, at, at + len);
      outs[i] = out;
      changed = true;
      size += 4 + (out === null ? 0 : out.length);
    } else {
      outs[i] = undefined;
      size += 4 + Math.max(len, 0);
    }
    if (len > 0) at += len;
  }
  if (at !== frame.length) throw new DataRowError('bytes after the last DataRow field');
  if (!changed) return frame;

  const result = Buffer.allocUnsafe(size);
  result[0] = DATA_ROW;
  result.writeInt32BE(size - 1, 1);
  result.writeInt16BE(n, 5);
  let w = HEADER;
  // Unmasked fields are copied as runs: consecutive ones share one copy of their length words and bytes.
  let runStart = -1;
  for (let i = 0; i <= n; i++) {
    const out = i < n ? outs[i] : null;
    if (i < n && out === undefined) {
      if (runStart < 0) runStart = starts[i]! - 4;
      continue;
    }
    if (runStart >= 0) {
      const runEnd = starts[i - 1]! + Math.max(lengths[i - 1]!, 0);
      w += copyBytes(frame, runStart, runEnd, result, w);
      runStart = -1;
    }
    if (i === n) break;
    if (out === null) {
      w = result.writeInt32BE(-1, w);
    } else if (out !== undefined) {
      w = result.writeInt32BE(out.length, w);
      w += copyBytes(out, 0, out.length, result, w);
    }
  }
  // Not truncated: the next row overwrites every entry it reads (and the array keeps its storage).
  return result;
}

/** Reads a DataRow's fields (NULL as null), for tests and tools; not used on the hot path. */
export function readDataRow(frame: Buffer): (Buffer | null)[] {
  const n = frame.readInt16BE(5);
  const fields: (Buffer | null)[] = [];
  let at = HEADER;
  for (let i = 0; i < n; i++) {
    const len = frame.readInt32BE(at);
    at += 4;
    fields.push(len < 0 ? null : frame.subarray(at, at + len));
    if (len > 0) at += len;
  }
  return fields;
}

/** Builds a DataRow frame from field values (NULL as null). */
export function buildDataRow(fields: readonly (Buffer | string | null)[]): Buffer {
  const bufs = fields.map((f) => (typeof f === 'string' ? Buffer.from(f, 'utf8') : f));
  const size = HEADER + bufs.reduce((s, b) => s + 4 + (b ? b.length : 0), 0);
  const out = Buffer.allocUnsafe(size);
  out[0] = DATA_ROW;
  out.writeInt32BE(size - 1, 1);
  out.writeInt16BE(bufs.length, 5);
  let w = HEADER;
  for (const b of bufs) {
    if (b === null) w = out.writeInt32BE(-1, w);
    else {
      w = out.writeInt32BE(b.length, w);
      w += b.copy(out, w);
    }
  }
  return out;
}
