/**
 * The shell's own layer rule: only the two entry files touch Electron; main/core takes it as injected ports, which
 * is what lets everything else run (and be tested) on plain Node.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const MAIN = join(import.meta.dirname, '..', '..', '..', 'main');
const IMPORTS_ELECTRON = /(?:from\s+|import\s*\(\s*|require\s*\(\s*)['"]electron(?:\/[^'"]*)?['"]/;

export const importsElectron = (source: string) => IMPORTS_ELECTRON.test(source);

describe('main/ layers', () => {
  it('detects an electron import (the check can fail)', () => {
    expect(importsElectron(`import { app } from 'electron';`)).toBe(true);
    expect(importsElectron(`const { ipcRenderer } = require("electron/renderer")`)).toBe(true);
    expect(importsElectron(`import { x } from './electron-main.js';`)).toBe(false);
  });

  it('only electron-main.ts and preload.ts import electron', () => {
    const files = readdirSync(MAIN, { recursive: true, encoding: 'utf8' }).filter((f) => /\.(ts|mts|mjs|js)$/.test(f));
    const offenders = files.filter((f) => importsElectron(readFileSync(join(MAIN, f), 'utf8')));
    expect(offenders.sort()).toEqual(['electron-main.ts', 'preload.ts']);
  });
});
