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

/** A target's database as the server knows it: backends of two targets naming the same database share pids. */
function databaseOf(t: UpstreamTarget): string {
  return `${t.host}:${t.port}/${t.database}`;
}

/**
 * Sluice hands each client its own BackendKeyData so the upstream backend's key never leaves the proxy,
 * and maps a CancelRequest carrying Sluice's key to the right upstream backend.
 *
 * The reverse map (upstream backend -> Sluice pid) lets a NotificationResponse name its sender by the pid that
 * sender's client was given, as PostgreSQL's own does: a client that ignores "notifications from myself" by
 * comparing with its BackendKeyData pid keeps working through Sluice.
 */
export class CancelRegistry {
  private readonly byPid = new Map<number, CancelEntry>();
  /** databaseOf(target) -> upstream pid -> Sluice pid, for sessions relaying now. */
  private readonly byUpstream = new Map<string, Map<number, number>>();

  register(target: UpstreamTarget, upstreamPid: number, upstreamSecret: number): { pid: number; secret: number } {
    let pid: number;
    do pid = randomInt(1, 0x7fffffff); while (this.byPid.has(pid));
    const secret = randomInt(-0x80000000, 0x7fffffff);
    const s = Buffer.alloc(4);
    s.writeInt32BE(secret);
    this.byPid.set(pid, { secret: s, target, upstreamPid, upstreamSecret });
    const db = databaseOf(target);
    let pids = this.byUpstream.get(db);
    if (!pids) this.byUpstream.set(db, (pids = new Map()));
    pids.set(upstreamPid, pid);
    return { pid, secret };
  }

  /** The pid Sluice gave the client of the backend `upstreamPid` of `target`'s database; null when none relays now. */
  clientPid(target: UpstreamTarget, upstreamPid: number): number | null {
    return this.byUpstream.get(databaseOf(target))?.get(upstreamPid) ?? null;
  }

  /** The session's own cancel handling, tried before the cancel is forwarded upstream. */
  setLocal(pid: number, local: () => boolean): void {
    const e = this.byPid.get(pid);
    if (e) e.local = local;
  }

  unregister(pid: number): void {
    const e = this.byPid.get(pid);
    if (!e) return;
    this.byPid.delete(pid);
    const db = databaseOf(e.target);
    const pids = this.byUpstream.get(db);
    // A later session may already hold the same upstream pid (the server reused it): leave its entry alone.
    if (pids?.get(e.upstreamPid) === pid) {
      pids.delete(e.upstreamPid);
      if (pids.size === 0) this.byUpstream.delete(db);
    }
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
