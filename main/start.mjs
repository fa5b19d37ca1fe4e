// @ts-check
/**
 * `npm start`: opens the desktop app (Electron running dist/electron/main/index.js). When the Electron binary is
 * missing (it is downloaded outside the npm registry at install time, which offline machines cannot do and which
 * package.json's allowScripts skips), it says so in one paragraph and runs the same broker headless instead
 * (`sluice serve`, console in the browser), so `npm install && npm start` always gives a working Sluice.
 * SLUICE_NO_SERVE_FALLBACK=1 makes it exit 1 after the paragraph instead (for scripts that need the window).
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const MAIN_BUNDLE = fileURLToPath(new URL('../dist/electron/main/index.js', import.meta.url));

export const MISSING_ELECTRON = [
  'Sluice: the Electron binary is not installed, so the desktop app cannot open on this machine',
  '(npm installs only the electron package; its binary is downloaded from GitHub by an install script,',
  'which this machine cannot reach or which package.json\'s allowScripts skips).',
  'The same broker runs headless with the operator console in your browser: `npx sluice serve`',
  '(npm start runs it for you now; set SLUICE_NO_SERVE_FALLBACK=1 to stop here instead).',
  'To get the desktop app, run `node node_modules/electron/install.js` where GitHub downloads are reachable,',
  'or point ELECTRON_OVERRIDE_DIST_PATH at an unpacked Electron 41, then `npm start` again.',
].join('\n');

/**
 * Path of the Electron executable, or null when it is not there. The electron package's main module returns the
 * path, or throws "Electron failed to install correctly" when its download never happened.
 * @param {(id: string) => unknown} requireFn
 * @returns {string | null}
 */
export function findElectron(requireFn) {
  try {
    const path = requireFn('electron');
    return typeof path === 'string' && existsSync(path) ? path : null;
  } catch {
    return null;
  }
}

/**
 * @typedef {object} StartDeps
 * @property {string | null} electron
 * @property {NodeJS.ProcessEnv} env
 * @property {(line: string) => void} warn
 * @property {(electron: string, args: string[], env: NodeJS.ProcessEnv) => Promise<number>} runElectron
 * @property {(argv: string[]) => Promise<number>} runServe
 */

/**
 * @param {string[]} argv arguments after `npm start --`
 * @param {StartDeps} deps
 * @returns {Promise<number>} the exit code
 */
export async function start(argv, deps) {
  if (deps.electron) {
    // ELECTRON_RUN_AS_NODE would make Electron a plain Node and skip the app entirely.
    const env = { ...deps.env };
    delete env.ELECTRON_RUN_AS_NODE;
    return deps.runElectron(deps.electron, [MAIN_BUNDLE, ...argv], env);
  }
  deps.warn(`${MISSING_ELECTRON}\n`);
  if (deps.env.SLUICE_NO_SERVE_FALLBACK === '1') return 1;
  return deps.runServe(['serve', ...argv]);
}

/** @type {StartDeps['runElectron']} */
function runElectron(electron, args, env) {
  return new Promise((resolve) => {
    const child = spawn(electron, args, { stdio: 'inherit', env, cwd: ROOT });
    child.on('error', (err) => {
      console.error(`sluice: could not start Electron: ${err.message}`);
      resolve(1);
    });
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
}

/** @type {StartDeps['runServe']} */
async function runServe(argv) {
  const cli = fileURLToPath(new URL('../dist/src/cli.js', import.meta.url));
  if (!existsSync(cli)) {
    console.error('sluice: not built yet. Run `npm run build` (npm start does it for you).');
    return 1;
  }
  const { main } = /** @type {{ main(argv: string[]): Promise<number> }} */ (await import(pathToFileURL(cli).href));
  return main(argv);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await start(process.argv.slice(2), {
    electron: findElectron(createRequire(import.meta.url)),
    env: process.env,
    warn: (line) => process.stderr.write(line),
    runElectron,
    runServe,
  });
}
