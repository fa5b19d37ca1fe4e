import net from 'node:net';
import { parseErrorFields, passwordMessage, startupMessage } from '../../src/protocol/messages.js';

/** One backend message as it arrived: code letter and the whole frame. */
export interface BackendFrame {
  code: string;
  frame: Buffer;
}

/**
 * A hand-driven PostgreSQL client on a raw socket, for sending what no driver would send and reading exactly
 * what came back (single-byte SSL answers, frames, the close). Nothing is interpreted beyond framing.
 */
export class RawClient {
  private buf = Buffer.alloc(0);
  private pos = 0;
  closed = false;
  private waiters: (() => void)[] = [];

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => { /* 'close' follows; a reset after a FATAL is expected */ });
  }

  static connect(port: number, host = '127.0.0.1'): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ host, port });
      s.once('connect', () => resolve(new RawClient(s)));
      s.once('error', reject);
    });
  }

  write(b: Buffer | string): void {
    this.socket.write(b);
  }

  /** Bytes received and not consumed yet. */
  get pending(): Buffer {
    return this.buf.subarray(this.pos);
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  async until(pred: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pred()) {
      if (this.closed && !pred()) throw new Error(`connection closed while waiting for ${what}; unread: ${this.pending.toString('latin1')}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => { clearTimeout(t); resolve(); });
      });
    }
  }

  /** The one-byte answer to SSLRequest / GSSENCRequest. */
  async byte(): Promise<string> {
    await this.until(() => this.pending.length >= 1, 'a one-byte answer');
    return String.fromCharCode(this.buf[this.pos++]!);
  }

  private completeFrame(): number {
    const p = this.pending;
    if (p.length < 5) return 0;
    const len = p.readInt32BE(1) + 1;
    return p.length >= len ? len : 0;
  }

  async frame(): Promise<BackendFrame> {
    await this.until(() => this.completeFrame() > 0, 'a backend frame');
    const len = this.completeFrame();
    const frame = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    return { code: String.fromCharCode(frame[0]!), frame };
  }

  /** Reads frames up to and including the first with `code`. */
  async readUntil(code: string): Promise<BackendFrame[]> {
    const out: BackendFrame[] = [];
    for (;;) {
      const f = await this.frame();
      out.push(f);
      if (f.code === code) return out;
      if (f.code === 'E' && code !== 'E') throw new Error(`server error while waiting for '${code}': ${JSON.stringify(parseErrorFields(f.frame))}`);
    }
  }

  /** Waits for the peer to close, then returns the fields of the last ErrorResponse it sent (if any). */
  async closedWithError(timeoutMs = 10_000): Promise<Record<string, string> | null> {
    await this.until(() => this.closed, 'the connection to close', timeoutMs);
    let err: Record<string, string> | null = null;
    while (this.completeFrame() > 0) {
      const f = await this.frame();
      if (f.code === 'E') err = parseErrorFields(f.frame);
    }
    return err;
  }

  /** StartupMessage, cleartext password, up to ReadyForQuery. */
  async login(user: string, password: string, database: string, extra: Record<string, string> = {}): Promise<BackendFrame[]> {
    this.write(startupMessage({ user, database, ...extra }));
    const auth = await this.frame();
    if (auth.code !== 'R' || auth.frame.readInt32BE(5) !== 3) {
      throw new Error(`expected a cleartext password request, got '${auth.code}' ${JSON.stringify(auth.code === 'E' ? parseErrorFields(auth.frame) : {})}`);
    }
    this.write(passwordMessage(Buffer.from(password + '\0', 'utf8')));
    return await this.readUntil('Z');
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** A typed frontend message: code, int32 length (itself included), body. */
export function typedMessage(code: string, body: Buffer = Buffer.alloc(0)): Buffer {
  const b = Buffer.alloc(5 + body.length);
  b.write(code, 0, 'latin1');
  b.writeInt32BE(4 + body.length, 1);
  body.copy(b, 5);
  return b;
}

/** Just the 5-byte header of a typed message that claims `declared` bytes. */
export function typedHeader(code: string, declared: number): Buffer {
  const b = Buffer.alloc(5);
  b.write(code, 0, 'latin1');
  b.writeInt32BE(declared, 1);
  return b;
}

export const query = (sql: string): Buffer => typedMessage('Q', Buffer.from(sql + '\0', 'utf8'));
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
