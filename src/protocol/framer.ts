import { MAX_STARTUP_PACKET, STARTUP_HEADER, TYPED_HEADER } from './codes.js';

/** Why a stream could not be framed. The connection that sent it is closed; nothing else is affected. */
export interface FrameError {
  kind: 'too_large' | 'bad_length';
  declared: number;
  limit: number;
}

export type FrameHandler = (frame: Buffer) => void;

/**
 * Splits a byte stream into whole PostgreSQL messages.
 *
 * Written by hand because no kept library does this without copying: pg-protocol's Parser decodes every
 * message into JS objects (DataRow fields become strings, binary is unsupported) and never checks lengths.
 * Here a frame that lies inside one chunk is handed out as a subarray of that chunk (same bytes, no copy),
 * so the proxy can forward it as received. Only a frame split across chunks is joined, once, when complete.
 * Limits are checked from the header, before any body byte is buffered.
 */
export class Framer {
  private parts: Buffer[] = [];
  private partsLen = 0;
  /** Total length of the frame being assembled, or -1 while its header is incomplete. */
  private frameLen = -1;
  private typed: boolean;

  constructor(
    private readonly maxMessageBytes: number,
    mode: 'startup' | 'typed',
  ) {
    this.typed = mode === 'typed';
  }

  /** After the StartupMessage every message carries a type byte. */
  setTyped(): void {
    this.typed = true;
  }

  /** Bytes held for an incomplete frame (e.g. plaintext sent after SSLRequest before the TLS handshake). */
  get buffered(): number {
    return this.partsLen;
  }

  /** Returns the bytes held for an incomplete frame and forgets them. */
  takeBuffered(): Buffer {
    const out = Buffer.concat(this.parts, this.partsLen);
    this.reset();
    return out;
  }

  /**
   * Feeds one chunk; calls `onFrame` for every complete frame in order. Returns an error (and stops) when a
   * header breaks a limit. `onFrame` may call setTyped() and the next frame is read in the new mode.
   */
  push(chunk: Buffer, onFrame: FrameHandler): FrameError | null {
    let off = 0;
    const n = chunk.length;
    if (this.partsLen > 0) {
      const hdr = this.headerSize();
      if (this.frameLen < 0) {
        const take = Math.min(hdr - this.partsLen, n);
        this.parts.push(chunk.subarray(0, take));
        this.partsLen += take;
        off = take;
        if (this.partsLen < hdr) return null;
        const head = Buffer.concat(this.parts, this.partsLen);
        const len = this.frameLength(head, 0);
        if (typeof len !== 'number') return this.fail(len);
        this.parts = [head];
        this.frameLen = len;
      }
      const take = Math.min(this.frameLen - this.partsLen, n - off);
      if (take > 0) {
        this.parts.push(chunk.subarray(off, off + take));
        this.partsLen += take;
        off += take;
      }
      if (this.partsLen < this.frameLen) return null;
      const frame = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.frameLen);
      this.reset();
      onFrame(frame);
    }
    while (off < n) {
      const hdr = this.headerSize();
      if (n - off < hdr) {
        this.parts.push(chunk.subarray(off));
        this.partsLen = n - off;
        return null;
      }
      const len = this.frameLength(chunk, off);
      if (typeof len !== 'number') return this.fail(len);
      if (off + len > n) {
        this.parts.push(chunk.subarray(off));
        this.partsLen = n - off;
        this.frameLen = len;
        return null;
      }
      onFrame(chunk.subarray(off, off + len));
      off += len;
    }
    return null;
  }

  private headerSize(): number {
    return this.typed ? TYPED_HEADER : STARTUP_HEADER;
  }

  /** Whole frame length from a header at `at`, or the limit it breaks. */
  private frameLength(buf: Buffer, at: number): number | FrameError {
    if (this.typed) {
      const declared = buf.readInt32BE(at + 1);
      if (declared < 4) return { kind: 'bad_length', declared, limit: 4 };
      if (declared + 1 > this.maxMessageBytes) return { kind: 'too_large', declared, limit: this.maxMessageBytes };
      return declared + 1;
    }
    const declared = buf.readInt32BE(at);
    if (declared < 8) return { kind: 'bad_length', declared, limit: 8 };
    if (declared > MAX_STARTUP_PACKET) return { kind: 'too_large', declared, limit: MAX_STARTUP_PACKET };
    return declared;
  }

  private fail(err: FrameError): FrameError {
    this.reset();
    return err;
  }

  private reset(): void {
    this.parts = [];
    this.partsLen = 0;
    this.frameLen = -1;
  }
}

/**
 * Writes frames to a socket, merging frames that sit next to each other in the same received chunk back into
 * one write of the original bytes. Returns false when the socket asks the writer to wait ('drain').
 */
export function writeFrames(out: { write(b: Buffer): boolean }, frames: readonly Buffer[]): boolean {
  let ok = true;
  let run: Buffer | undefined;
  let runEnd = 0;
  for (const f of frames) {
    if (run && f.buffer === run.buffer && f.byteOffset === runEnd) {
      runEnd += f.length;
      continue;
    }
    if (run) ok = out.write(widen(run, runEnd)) && ok;
    run = f;
    runEnd = f.byteOffset + f.length;
  }
  if (run) ok = out.write(widen(run, runEnd)) && ok;
  return ok;
}

function widen(start: Buffer, end: number): Buffer {
  const len = end - start.byteOffset;
  return len === start.length ? start : Buffer.from(start.buffer, start.byteOffset, len);
}
