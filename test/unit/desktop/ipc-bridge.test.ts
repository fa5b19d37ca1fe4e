/**
 * The IPC bridge, main side, with ipcMain injected: one handler per contract method and nothing else, every
 * argument validated by the contract's zod schema before a handler runs, and only our own window's top-level frame
 * showing our own page gets an answer.
 */
import { describe, expect, it, vi } from 'vitest';
import { METHODS, type Method } from '../../../src/contract/api.js';
import { ContractError } from '../../../src/operator/errors.js';
import { EventBus } from '../../../src/operator/event-bus.js';
import type { ContractHandlers } from '../../../src/operator/service.js';
import { callChannel, EVENTS_CHANNEL } from '../../../main/core/channels.js';
import {
  forwardEvents, ForeignSenderError, isOwnTopFrame, registerContractIpc, type ConsoleWindowIdentity, type FrameLike, type InvokeEventLike,
} from '../../../main/core/ipc-bridge.js';

const APP = 'sluice://app';
const mainFrame: FrameLike = { url: `${APP}/index.html#/inbox`, parent: null, processId: 7, routingId: 1 };
const window: ConsoleWindowIdentity = { webContentsId: 3, mainFrame };
const ours: InvokeEventLike = { sender: { id: 3 }, senderFrame: mainFrame };

function setup(handlerImpl: Partial<Record<Method, (...a: unknown[]) => unknown>> = {}) {
  const registered = new Map<string, (event: InvokeEventLike, ...args: unknown[]) => unknown>();
  const handlers = Object.fromEntries(METHODS.map((m) => [m, vi.fn(handlerImpl[m] ?? (() => `result of ${m}`))])) as unknown as ContractHandlers;
  const logs: string[] = [];
  const unregister = registerContractIpc({
    ipcMain: { handle: (ch, l) => void registered.set(ch, l), removeHandler: (ch) => void registered.delete(ch) },
    handlers, methods: METHODS, caller: { operator: 'op via desktop app' },
    isTrustedSender: (e) => isOwnTopFrame(e, window, [APP]), log: (_l, m) => logs.push(m),
  });
  const call = (method: string, event: InvokeEventLike, ...args: unknown[]) => {
    const h = registered.get(`sluice:call:${method}`);
    if (!h) throw new Error(`no handler for ${method}`);
    return Promise.resolve(h(event, ...args));
  };
  return { registered, handlers, logs, unregister, call, spy: (m: Method) => handlers[m] as unknown as ReturnType<typeof vi.fn> };
}

describe('handlers', () => {
  it('registers exactly one channel per contract method, and removes them again', () => {
    const s = setup();
    expect([...s.registered.keys()].sort()).toEqual(METHODS.map((m) => callChannel(m)).sort());
    s.unregister();
    expect(s.registered.size).toBe(0);
  });

  it('passes validated arguments (defaults applied) and the desktop operator to the handler', async () => {
    const s = setup();
    expect(await s.call('listSessions', ours, { identity: 'agent' })).toEqual({ ok: true, result: 'result of listSessions' });
    expect(s.spy('listSessions')).toHaveBeenCalledWith({ identity: 'agent', limit: 100 }, { operator: 'op via desktop app' });
    expect(await s.call('listApprovals', ours)).toEqual({ ok: true, result: 'result of listApprovals' });
  });

  it.each([
    ['an unknown key', 'listSessions', { identity: 'agent', sql: 'DROP TABLE x' }],
    ['a wrong type', 'listStatements', { sessionId: '1' }],
    ['a denial without a reason', 'decide', { id: 'abcd1234', decision: 'deny' }],
    ['a malformed approval id', 'decide', { id: '../../etc', decision: 'approve_once' }],
    ['not an object', 'revokeKey', 'ci-bot'],
  ])('refuses %s before any handler runs', async (_what, method, args) => {
    const s = setup();
    const reply = (await s.call(method, ours, args)) as { ok: false; error: { code: string; issues: unknown[] } };
    expect(reply.ok).toBe(false);
    expect(reply.error.code).toBe('invalid_arguments');
    expect(reply.error.issues.length).toBeGreaterThan(0);
    expect(s.spy(method as Method)).not.toHaveBeenCalled();
  });

  it('refuses more than one argument', async () => {
    const s = setup();
    expect(await s.call('getStats', ours, {}, { extra: true })).toMatchObject({ ok: false, error: { code: 'invalid_arguments' } });
    expect(s.spy('getStats')).not.toHaveBeenCalled();
  });

  it('returns contract errors as data and hides internal ones', async () => {
    const s = setup({
      revokeKey: () => { throw new ContractError('not_found', 'no key x'); },
      getStats: () => { throw new Error('secret stack detail'); },
    });
    expect(await s.call('revokeKey', ours, { name: 'x' })).toEqual({ ok: false, error: { code: 'not_found', message: 'no key x' } });
    expect(await s.call('getStats', ours, {})).toEqual({ ok: false, error: { code: 'internal', message: 'internal error (see the Sluice log)' } });
    expect(s.logs.join('\n')).toContain('secret stack detail');
  });
});

describe('sender frames', () => {
  const foreign: [string, InvokeEventLike][] = [
    ['an iframe of our page', { sender: { id: 3 }, senderFrame: { url: `${APP}/index.html`, parent: mainFrame, processId: 7, routingId: 2 } }],
    ['another window', { sender: { id: 4 }, senderFrame: { ...mainFrame } }],
    ['our frame after navigating elsewhere', { sender: { id: 3 }, senderFrame: { ...mainFrame, url: 'https://evil.example/' } }],
    ['a file:// page', { sender: { id: 3 }, senderFrame: { ...mainFrame, url: 'file:///tmp/x.html' } }],
    ['a look-alike origin', { sender: { id: 3 }, senderFrame: { ...mainFrame, url: 'sluice://app.evil/index.html' } }],
    ['another frame of the same process', { sender: { id: 3 }, senderFrame: { ...mainFrame, routingId: 9 } }],
    ['a frame that is gone', { sender: { id: 3 }, senderFrame: null }],
  ];

  it.each(foreign)('refuses %s without calling the handler', async (_what, event) => {
    const s = setup();
    await expect(s.call('listApprovals', event, {})).rejects.toBeInstanceOf(ForeignSenderError);
    await expect(s.call('decide', event, { id: 'abcd1234', decision: 'approve_once' })).rejects.toBeInstanceOf(ForeignSenderError);
    expect(s.spy('listApprovals')).not.toHaveBeenCalled();
    expect(s.spy('decide')).not.toHaveBeenCalled();
    expect(s.logs[0]).toMatch(/refused: sender frame/);
  });

  it('accepts our frame and refuses everyone while there is no window', () => {
    expect(isOwnTopFrame(ours, window, [APP])).toBe(true);
    expect(isOwnTopFrame(ours, null, [APP])).toBe(false);
  });
});

describe('events to the window', () => {
  it('sends one batch per turn, and nothing while the window is gone', async () => {
    const bus = new EventBus();
    const sent: [string, unknown][] = [];
    let target: { isDestroyed(): boolean; send(c: string, p: unknown): void } | null = null;
    const stop = forwardEvents(bus, () => target);
    bus.emit({ type: 'policy_changed', at: 1, policyVersion: 2, sha256: 'x' });
    target = { isDestroyed: () => false, send: (c, p) => void sent.push([c, p]) };
    bus.emit({ type: 'policy_changed', at: 2, policyVersion: 3, sha256: 'y' });
    bus.emit({ type: 'policy_changed', at: 3, policyVersion: 4, sha256: 'z' });
    await new Promise((r) => setImmediate(r));
    expect(sent).toEqual([[EVENTS_CHANNEL, [expect.objectContaining({ at: 2 }), expect.objectContaining({ at: 3 })]]]);
    stop();
    bus.emit({ type: 'policy_changed', at: 4, policyVersion: 5, sha256: 'w' });
    await new Promise((r) => setImmediate(r));
    expect(sent).toHaveLength(1);
  });
});
