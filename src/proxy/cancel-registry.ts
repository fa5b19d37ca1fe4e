import { randomInt, timingSafeEqual } from 'node:crypto';
import type { UpstreamTarget } from './upstream.js';

interface CancelEntry {
  secret: Buffer;
  target: UpstreamTarget;
  upstreamPid: number;
  upstreamSecret: number;
  /** Handles the cancel inside Sluice (a statement held for approval); true when nothing is to go upstream. */
  local?: () => boolean;
}

/**
 * Sluice hands each client its own BackendKeyData so the upstream backend's key never leaves the proxy,
 * and maps a CancelRequest carrying Sluice's key to the right upstream backend.
 */
export class CancelRegistry {
  private readonly byPid = new Map<number, CancelEntry>();

  register(target: UpstreamTarget, upstreamPid: number, upstreamSecret: number): { pid: number; secret: number } {
    let pid: number;
    do pid = randomInt(1, 0x7fffffff); while (this.byPid.has(pid));
    const secret = randomInt(-0x80000000, 0x7fffffff);
    const s = Buffer.alloc(4);
    s.writeInt32BE(secret);
    this.byPid.set(pid, { secret: s, target, upstreamPid, upstreamSecret });
    return { pid, secret };
  }

  /** The session's own cancel handling, tried before the cancel is forwarded upstream. */
  setLocal(pid: number, local: () => boolean): void {
    const e = this.byPid.get(pid);
    if (e) e.local = local;
  }

  unregister(pid: number): void {
    this.byPid.delete(pid);
  }

  /** The upstream key for a client's cancel, or null when pid/secret do not match a live session. */
  resolve(pid: number, secret: number): { target: UpstreamTarget; pid: number; secret: number; local?: () => boolean } | null {
    const e = this.byPid.get(pid);
    if (!e) return null;
    const s = Buffer.alloc(4);
    s.writeInt32BE(secret);
    if (!timingSafeEqual(s, e.secret)) return null;
    return { target: e.target, pid: e.upstreamPid, secret: e.upstreamSecret, ...(e.local ? { local: e.local } : {}) };
  }

  get size(): number {
    return this.byPid.size;
  }
}
