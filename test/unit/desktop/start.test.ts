/** `npm start`: the desktop app when Electron is there; otherwise one clear paragraph, then `sluice serve`. */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { findElectron, MAIN_BUNDLE, MISSING_ELECTRON, start } from '../../../main/start.mjs';

const ROOT = join(import.meta.dirname, '..', '..', '..');

function deps(electron: string | null, env: NodeJS.ProcessEnv = {}) {
  const calls: unknown[][] = [];
  let warned = '';
  return {
    calls,
    warned: () => warned,
    deps: {
      electron, env, warn: (l: string) => { warned += l; },
      runElectron: async (...a: unknown[]) => { calls.push(['electron', ...a]); return 0; },
      runServe: async (argv: string[]) => { calls.push(['serve', argv]); return 0; },
    },
  };
}

describe('npm start', () => {
  it('runs the desktop app with Electron when the binary is there (and never as plain Node)', async () => {
    const d = deps('/opt/electron/electron', { ELECTRON_RUN_AS_NODE: '1', HOME: '/h' });
    expect(await start(['--config', 'x.yaml'], d.deps)).toBe(0);
    expect(d.calls).toEqual([['electron', '/opt/electron/electron', [MAIN_BUNDLE, '--config', 'x.yaml'], { HOME: '/h' }]]);
    expect(d.warned()).toBe('');
  });

  it('without the binary: says so, points to npx sluice serve, and runs it with the same arguments', async () => {
    const d = deps(null);
    expect(await start(['--config', 'x.yaml'], d.deps)).toBe(0);
    expect(d.warned()).toBe(`${MISSING_ELECTRON}\n`);
    expect(MISSING_ELECTRON).toMatch(/Electron binary is not installed/);
    expect(MISSING_ELECTRON).toContain('`npx sluice serve`');
    expect(d.calls).toEqual([['serve', ['serve', '--config', 'x.yaml']]]);
  });

  it('SLUICE_NO_SERVE_FALLBACK=1 stops after the paragraph with exit code 1', async () => {
    const d = deps(null, { SLUICE_NO_SERVE_FALLBACK: '1' });
    expect(await start([], d.deps)).toBe(1);
    expect(d.calls).toEqual([]);
  });

  it('finds no Electron when the package has no binary, and a path when it has one', () => {
    expect(findElectron(() => { throw new Error('Electron failed to install correctly'); })).toBeNull();
    expect(findElectron(() => '/nonexistent/electron')).toBeNull();
    expect(findElectron(() => process.execPath)).toBe(process.execPath);
  });

  it('this machine (no Electron binary): the real script prints the paragraph', () => {
    const env: NodeJS.ProcessEnv = { ...process.env, SLUICE_NO_SERVE_FALLBACK: '1' };
    delete env.ELECTRON_OVERRIDE_DIST_PATH;
    const r = spawnSync(process.execPath, [join(ROOT, 'main', 'start.mjs')], { env, encoding: 'utf8', timeout: 30_000 });
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(`${MISSING_ELECTRON}\n`);
  });
});
