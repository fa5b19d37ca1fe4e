/**
 * electron-vite: bundles the Electron main process (main/electron-main.ts, with the broker from src/) and the
 * preload (main/preload.ts) into dist/electron/, and the console (renderer/, built with its own Vite config into
 * dist/renderer, the same build `sluice serve` serves). Building needs no Electron binary: electron-vite reads only
 * electron's package.json (for the Node and Chrome targets).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig, type UserConfig } from 'electron-vite';
import { loadConfigFromFile } from 'vite';

const at = (p: string) => fileURLToPath(new URL(p, import.meta.url));

/**
 * HOOK for the console: the renderer is built by renderer/vite.config.ts (owned by the console work). When that
 * config and its index.html exist, electron-vite builds it too (and `electron-vite dev` serves it with hot
 * reload); otherwise only main and preload are built and the window says the console is not built.
 */
const RENDERER_VITE_CONFIG = at('./renderer/vite.config.ts');
/** `--mode shell` builds main and preload only (`npm run build`, where build:ui has built the renderer already). */
const SHELL_ONLY_MODE = 'shell';
/** Where main and preload go; tests build into a temporary directory instead. */
const OUT = process.env.SLUICE_ELECTRON_OUT ?? at('./dist/electron');

async function rendererConfig(command: 'build' | 'serve', mode: string): Promise<UserConfig['renderer'] | undefined> {
  if (!existsSync(RENDERER_VITE_CONFIG) || !existsSync(at('./renderer/index.html'))) return undefined;
  // Loaded the way Vite loads it (a TS file, bundled), so the console has one build config, not two.
  const loaded = await loadConfigFromFile({ command, mode }, RENDERER_VITE_CONFIG, undefined, 'warn');
  if (!loaded) return undefined;
  const config = loaded.config as NonNullable<UserConfig['renderer']> & { build?: Record<string, unknown> };
  // electron-vite looks for index.html in its own root, not the renderer's: name the entry.
  return { ...config, build: { ...config.build, rolldownOptions: { input: at('./renderer/index.html') } } };
}

export default defineConfig(async ({ command, mode }): Promise<UserConfig> => {
  const renderer = mode === SHELL_ONLY_MODE ? undefined : await rendererConfig(command, mode);
  return {
    main: {
      build: {
        outDir: join(OUT, 'main'),
        emptyOutDir: true,
        sourcemap: true,
        // Runtime dependencies (better-sqlite3's native addon, the libpg-query WASM, pglite) stay in node_modules:
        // electron-builder packs them and rebuilds better-sqlite3 for Electron's ABI.
        externalizeDeps: true,
        rolldownOptions: { input: at('./main/electron-main.ts'), output: { format: 'es', entryFileNames: 'index.js' } },
      },
    },
    preload: {
      build: {
        outDir: join(OUT, 'preload'),
        emptyOutDir: true,
        // A sandboxed preload is a single CommonJS script that may require only 'electron': bundle everything
        // (the contract and zod) into it.
        externalizeDeps: false,
        rolldownOptions: {
          input: at('./main/preload.ts'),
          output: { format: 'cjs', entryFileNames: 'index.cjs', codeSplitting: false },
        },
      },
    },
    ...(renderer ? { renderer } : {}),
  };
});
