import { AuthCode, Backend, StartupCode } from './codes.js';

/** Fields of an ErrorResponse / NoticeResponse. https://www.postgresql.org/docs/current/protocol-error-fields.html */
export interface PgError {
  severity: 'ERROR' | 'FATAL' | 'PANIC' | 'WARNING' | 'NOTICE';
  code: string;
  message: string;
  detail?: string;
  hint?: string;
  /** 1-based character position in the statement text (field P). */
  position?: number;
}

/** A typed message: code byte, int32 length (itself included), body. */
export function typed(code: number, body: Buffer): Buffer {
  const out = Buffer.allocUnsafe(5 + body.length);
  out[0] = code;
  out.writeInt32BE(4 + body.length, 1);
  body.copy(out, 5);
  return out;
}

/** A NUL-terminated UTF-8 string. */
export function cstr(s: string): Buffer {
  return Buffer.from(s + '\0', 'utf8');
}

export function errorResponse(e: PgError, code = Backend.ErrorResponse): Buffer {
  const parts = [
    cstr('S' + e.severity),
    cstr('V' + e.severity),
    cstr('C' + e.code),
    cstr('M' + e.message),
  ];
  if (e.detail) parts.push(cstr('D' + e.detail));
  if (e.hint) parts.push(cstr('H' + e.hint));
  if (e.position !== undefined) parts.push(cstr('P' + String(e.position)));
  parts.push(Buffer.from([0]));
  return typed(code, Buffer.concat(parts));
}

export function authRequest(code: AuthCode): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32BE(code);
  return typed(Backend.Authentication, b);
}

export function backendKeyData(pid: number, secret: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeInt32BE(pid, 0);
  b.writeInt32BE(secret, 4);
  return typed(Backend.BackendKeyData, b);
}

export function readyForQuery(status: 'I' | 'T' | 'E'): Buffer {
  return typed(Backend.ReadyForQuery, Buffer.from(status, 'latin1'));
}

/** Tells a client asking for protocol 3.x (x > 0) or `_pq_.` options what this proxy speaks: 3.0, no options. */
export function negotiateProtocolVersion(newestMinor: number, unsupported: string[]): Buffer {
  const head = Buffer.alloc(8);
  head.writeInt32BE(newestMinor, 0);
  head.writeInt32BE(unsupported.length, 4);
  return typed(Backend.NegotiateProtocolVersion, Buffer.concat([head, ...unsupported.map(cstr)]));
}

/** Reads a NUL-terminated UTF-8 string at `at`; returns it and the offset after the NUL, or null if unterminated. */
export function readCString(buf: Buffer, at: number, end = buf.length): [string, number] | null {
  const nul = buf.indexOf(0, at);
  if (nul < 0 || nul >= end) return null;
  return [buf.toString('utf8', at, nul), nul + 1];
}

/** Decodes the fields of an ErrorResponse/NoticeResponse frame (whole frame, code byte included). */
export function parseErrorFields(frame: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let at = 5;
  while (at < frame.length && frame[at] !== 0) {
    const key = String.fromCharCode(frame[at]!);
    const s = readCString(frame, at + 1);
    if (!s) break;
    out[key] = s[0];
    at = s[1];
  }
  return out;
}

export type StartupPacket =
  | { kind: 'ssl' }
  | { kind: 'gssenc' }
  | { kind: 'cancel'; pid: number; secret: number }
  | { kind: 'startup'; minor: number; params: Map<string, string> }
  | { kind: 'invalid'; reason: string };

/** Decodes one untyped startup-phase packet (length word included). */
export function parseStartupPacket(frame: Buffer): StartupPacket {
  const code = frame.readInt32BE(4);
  if (code === StartupCode.SSLRequest) return frame.length === 8 ? { kind: 'ssl' } : invalid('malformed SSLRequest');
  if (code === StartupCode.GSSENCRequest) return frame.length === 8 ? { kind: 'gssenc' } : invalid('malformed GSSENCRequest');
  if (code === StartupCode.CancelRequest) {
    if (frame.length !== 16) return invalid('malformed CancelRequest');
    return { kind: 'cancel', pid: frame.readInt32BE(8), secret: frame.readInt32BE(12) };
  }
  const major = code >>> 16;
  if (major !== 3) return invalid(`unsupported frontend protocol ${major}.${code & 0xffff}: Sluice speaks 3.0`);
  const params = new Map<string, string>();
  let at = 8;
  for (;;) {
    if (at >= frame.length) return invalid('startup packet is not terminated');
    if (frame[at] === 0) break;
    const k = readCString(frame, at);
    if (!k || k[0] === '') return invalid('malformed startup parameter name');
    const v = readCString(frame, k[1]);
    if (!v) return invalid(`startup parameter "${k[0]}" has no value`);
    if (params.has(k[0])) return invalid(`startup parameter "${k[0]}" given twice`);
    params.set(k[0], v[0]);
    at = v[1];
  }
  if (at + 1 !== frame.length) return invalid('bytes after the end of the startup packet');
  return { kind: 'startup', minor: code & 0xffff, params };
}

function invalid(reason: string): StartupPacket {
  return { kind: 'invalid', reason };
}

/** Builds a StartupMessage for protocol 3.0. */
export function startupMessage(params: Record<string, string>): Buffer {
  const body = Buffer.concat([
    ...Object.entries(params).flatMap(([k, v]) => [cstr(k), cstr(v)]),
    Buffer.from([0]),
  ]);
  const out = Buffer.allocUnsafe(8 + body.length);
  out.writeInt32BE(8 + body.length, 0);
  out.writeInt32BE(StartupCode.Protocol3, 4);
  body.copy(out, 8);
  return out;
}

/** SSLRequest / CancelRequest as the client side of a connection sends them. */
export function sslRequest(): Buffer {
  const b = Buffer.alloc(8);
  b.writeInt32BE(8, 0);
  b.writeInt32BE(StartupCode.SSLRequest, 4);
  return b;
}

export function cancelRequest(pid: number, secret: number): Buffer {
  const b = Buffer.alloc(16);
  b.writeInt32BE(16, 0);
  b.writeInt32BE(StartupCode.CancelRequest, 4);
  b.writeInt32BE(pid, 8);
  b.writeInt32BE(secret, 12);
  return b;
}

/** PasswordMessage / SASLResponse: 'p' + raw body. */
export function passwordMessage(body: Buffer): Buffer {
  return typed(0x70, body);
}

export function terminate(): Buffer {
  return Buffer.from([0x58, 0, 0, 0, 4]);
}
