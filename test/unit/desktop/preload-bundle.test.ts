/**
 * The built preload, as Electron would run it in a sandboxed renderer: one CommonJS script whose only require is
 * 'electron'. Built here with the project's own electron-vite config (main and preload, into a temporary
 * directory), then evaluated with a fake contextBridge and ipcRenderer: the page gets exactly the contract's
 * methods and the event subscription, each bound to its own channel, and never ipcRenderer or an IPC event.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import vm from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { METHODS } from '../../../src/contract/api.js';
import { BRIDGE_KEY, EVENTS_CHANNEL, EVENTS_KEY } from '../../../main/core/channels.js';

const ROOT = join(import.meta.dirname, '..', '..', '..');
let out: string;

beforeAll(async () => {
  out = mkdtempSync(join(tmpdir(), 'sluice-electron-build-'));
  process.env.SLUICE_ELECTRON_OUT = out;
  try {
    const { build } = await import('electron-vite');
    await build({ root: ROOT, configFile: join(ROOT, 'electron.vite.config.ts'), mode: 'shell', logLevel: 'error', ignoreConfigWarning: true });
  } finally {
    delete process.env.SLUICE_ELECTRON_OUT;
  }
}, 120_000);
afterAll(() => {
  if (out) rmSync(out, { recursive: true, force: true });
});

function runPreload() {
  const code = readFileSync(join(out, 'preload', 'index.cjs'), 'utf8');
  const exposed = new Map<string, unknown>();
  const invoked: [string, unknown[]][] = [];
  const listeners = new Map<string, (event: unknown, ...args: unknown[]) => void>();
  const required: string[] = [];
  const electron = {
    contextBridge: { exposeInMainWorld: (key: string, api: unknown) => void exposed.set(key, api) },
    ipcRenderer: {
      invoke: (channel: string, ...args: unknown[]) => { invoked.push([channel, args]); return Promise.resolve({ ok: true, result: channel }); },
      on: (channel: string, l: (event: unknown, ...args: unknown[]) => void) => void listeners.set(channel, l),
    },
  };
  const module = { exports: {} };
  const sandboxRequire = (id: string) => {
    required.push(id);
    if (id === 'electron') return electron;
    throw new Error(`a sandboxed preload cannot require ${id}`);
  };
  vm.runInNewContext(code, { require: sandboxRequire, module, exports: module.exports, console });
  return { exposed, invoked, listeners, required };
}

describe('the built preload', () => {
  it('main and preload build without the Electron binary', () => {
    expect(existsSync(join(out, 'main', 'index.js'))).toBe(true);
    expect(existsSync(join(out, 'preload', 'index.cjs'))).toBe(true);
  });

  it('exposes exactly the contract methods and onEvents, and requires nothing but electron', () => {
    const p = runPreload();
    expect([...p.exposed.keys()]).toEqual([BRIDGE_KEY]);
    const api = p.exposed.get(BRIDGE_KEY) as Record<string, unknown>;
    expect(Object.keys(api).sort()).toEqual([...METHODS, EVENTS_KEY].sort());
    expect(Object.values(api).every((v) => typeof v === 'function')).toBe(true);
    expect(Object.isFrozen(api)).toBe(true);
    expect(p.required).toEqual(['electron']);
  });

  it('each method invokes its own channel with one argument; events arrive without the IPC event', async () => {
    const p = runPreload();
    const api = p.exposed.get(BRIDGE_KEY) as Record<string, (...a: unknown[]) => unknown>;
    await expect(api.listSessions!({ identity: 'a' }, 'smuggled')).resolves.toEqual({ ok: true, result: 'sluice:call:listSessions' });
    expect(p.invoked).toEqual([['sluice:call:listSessions', [{ identity: 'a' }]]]);
    const got: unknown[] = [];
    const off = api[EVENTS_KEY]!((events: unknown) => got.push(events)) as () => void;
    const ipcEvent = { sender: { secret: 'ipcRenderer' } };
    p.listeners.get(EVENTS_CHANNEL)!(ipcEvent, [{ type: 'policy_changed' }]);
    expect(got).toEqual([[{ type: 'policy_changed' }]]);
    off();
    p.listeners.get(EVENTS_CHANNEL)!(ipcEvent, [{ type: 'policy_changed' }]);
    expect(got).toHaveLength(1);
    expect([...p.listeners.keys()]).toEqual([EVENTS_CHANNEL]);
  });
});
