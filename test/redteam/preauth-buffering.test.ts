import { afterEach, describe, expect, it } from 'vitest';
import type { AuthOutcome } from '../../src/identity/authenticator.js';
import { passwordMessage, startupMessage } from '../../src/protocol/messages.js';
import { CancelRegistry } from '../../src/proxy/cancel-registry.js';
import type { ProxyContext } from '../../src/proxy/context.js';
import { ProxyListener } from '../../src/proxy/listener.js';
import { RawClient, sleep, typedMessage } from './raw-client.js';

/**
 * An unauthenticated client must not be able to make Sluice hold an unbounded amount of its data. Between the
 * password and the verdict (scrypt on the libuv pool: tens of ms alone, much longer when many logins queue) a
 * client can keep sending; Sluice should stop reading (TCP backpressure) rather than buffer it all.
 *
 * The key check is held open by the test so the window is as long as the test needs, independent of speed.
 */
let listener: ProxyListener | undefined;
let release: ((c: AuthOutcome) => void) | undefined;

afterEach(async () => {
  release?.({ ok: false, code: '28P01', message: 'refused', hint: '', auditReason: 'test over' });
  await listener?.close('test over');
});

function context(): ProxyContext {
  return {
    limits: { maxClientConnections: 10, maxMessageBytes: 1 << 20, maxServerMessageBytes: 1 << 20, authTimeoutMs: 60_000, connectTimeoutMs: 1000 },
    tls: undefined,
    targets: new Map(),
    resolvePassword: () => undefined,
    authenticate: () => new Promise<AuthOutcome>((resolve) => { release = resolve; }),
    audit: { openSession: () => 1, endSession: () => {}, record: (_r, done) => done(null, []), complete: () => {}, event: () => 1 },
    cancels: new CancelRegistry(),
    activeSessions: new Set(),
    log: () => {},
    createGate: () => { throw new Error('no session gets this far in this test'); },
  };
}

describe('data sent while the password is being checked', () => {
  it('is not read without bound: Sluice applies backpressure until the client is authenticated', async () => {
    listener = new ProxyListener(context());
    const { port } = await listener.listen('127.0.0.1', 0);
    const c = await RawClient.connect(port);
    c.write(startupMessage({ user: 'attacker', database: 'app' }));
    expect((await c.frame()).code).toBe('R');
    c.write(passwordMessage(Buffer.from('sk_' + 'A'.repeat(43) + '\0')));

    // 128 MiB of well-formed 64 KiB Query messages. The same Buffer is queued each time, so the sender itself
    // holds no copies; whatever leaves its queue went to the kernel and from there only to Sluice.
    const frame = typedMessage('Q', Buffer.concat([Buffer.alloc(64 * 1024 - 6, 0x20), Buffer.from('\0')]));
    const total = 2048 * frame.length;
    for (let i = 0; i < 2048; i++) c.socket.write(frame);

    // Wait until the transfer stops moving (or is complete); no assertion on how long that takes.
    let last = -1;
    for (let i = 0; i < 100 && c.socket.writableLength !== last; i++) {
      last = c.socket.writableLength;
      await sleep(200);
    }
    const delivered = total - c.socket.writableLength;

    // Loopback kernel buffers here hold at most tcp_rmem max (32 MiB) + tcp_wmem max (4 MiB). Anything beyond
    // that was read by Sluice into memory on behalf of a client that has not proven who it is.
    expect(delivered).toBeLessThan(48 * 1024 * 1024);

    release!({ ok: false, code: '28P01', message: 'password authentication failed', hint: '', auditReason: 'mismatch' });
    expect(await c.closedWithError()).toMatchObject({ V: 'FATAL', C: '28P01' });
  });
});
