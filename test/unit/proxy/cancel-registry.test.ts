import { describe, expect, it } from 'vitest';
import { CancelRegistry } from '../../../src/proxy/cancel-registry.js';
import type { UpstreamTarget } from '../../../src/proxy/upstream.js';

const target = (name: string): UpstreamTarget => ({ name, host: '127.0.0.1', port: 5432, database: 'd', user: 'u', tls: { mode: 'disable' } });

describe('CancelRegistry', () => {
  it('maps Sluice\'s own key to the upstream backend key', () => {
    const reg = new CancelRegistry();
    const t = target('app');
    const key = reg.register(t, 4242, -99);
    expect(key.pid).not.toBe(4242); // the client never learns the upstream pid
    expect(Number.isInteger(key.pid) && key.pid > 0 && key.pid <= 0x7fffffff).toBe(true);
    expect(Number.isInteger(key.secret) && key.secret >= -0x80000000 && key.secret <= 0x7fffffff).toBe(true);
    expect(reg.resolve(key.pid, key.secret)).toEqual({ target: t, pid: 4242, secret: -99 });
    expect(reg.size).toBe(1);
  });

  it('refuses a wrong secret or an unknown pid', () => {
    const reg = new CancelRegistry();
    const key = reg.register(target('app'), 1, 2);
    expect(reg.resolve(key.pid, key.secret ^ 1)).toBeNull();
    expect(reg.resolve(key.pid === 1 ? 2 : 1, key.secret)).toBeNull();
    // The upstream key itself is not a Sluice key.
    expect(reg.resolve(1, 2)).toBeNull();
  });

  it('forgets a session on unregister', () => {
    const reg = new CancelRegistry();
    const key = reg.register(target('app'), 1, 2);
    reg.unregister(key.pid);
    expect(reg.resolve(key.pid, key.secret)).toBeNull();
    expect(reg.size).toBe(0);
  });

  it('hands out distinct pids and keeps sessions apart', () => {
    const reg = new CancelRegistry();
    const keys = Array.from({ length: 500 }, (_, i) => ({ i, t: target(`t${i % 3}`), ...reg.register(target(`t${i % 3}`), 1000 + i, i) }));
    expect(new Set(keys.map((k) => k.pid)).size).toBe(500);
    for (const k of keys) expect(reg.resolve(k.pid, k.secret)).toEqual({ target: k.t, pid: 1000 + k.i, secret: k.i });
  });

  it('names an upstream backend by the pid its client was given, per database, until it unregisters', () => {
    const reg = new CancelRegistry();
    const app = target('app');
    const same = { ...target('app-again') }; // another target naming the same database: same backends
    const other = { ...target('other'), database: 'e' };
    const a = reg.register(app, 4242, 1);
    const b = reg.register(other, 4242, 2); // another database may have a backend with the same pid
    expect(reg.clientPid(app, 4242)).toBe(a.pid);
    expect(reg.clientPid(same, 4242)).toBe(a.pid);
    expect(reg.clientPid(other, 4242)).toBe(b.pid);
    expect(reg.clientPid(app, 4243)).toBeNull(); // not relayed by Sluice: passed as is
    // The server reused the pid for a new session before the old one unregistered: the old one's end keeps it.
    const c = reg.register(app, 4242, 3);
    reg.unregister(a.pid);
    expect(reg.clientPid(app, 4242)).toBe(c.pid);
    reg.unregister(c.pid);
    reg.unregister(b.pid);
    expect(reg.clientPid(app, 4242)).toBeNull();
    expect(reg.clientPid(other, 4242)).toBeNull();
  });
});
