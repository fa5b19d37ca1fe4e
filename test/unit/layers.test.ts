import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * The core under src/ runs without Electron or a browser: it must never import electron, react, main/ or
 * renderer/. This keeps the rule executable (DESIGN.md section 1).
 */
const ROOT = join(import.meta.dirname, '..', '..');
const FORBIDDEN = /(?:from\s+|import\s*\(\s*|require\s*\(\s*)['"](electron|react|react-dom|(?:\.\.\/)+(?:main|renderer)(?:\/[^'"]*)?)['"]/g;

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? files(p) : /\.(ts|tsx|js|mjs)$/.test(name) ? [p] : [];
  });
}

export function forbiddenImports(source: string): string[] {
  return [...source.matchAll(FORBIDDEN)].map((m) => m[1]!);
}

describe('layers', () => {
  it('detects a forbidden import (the check can fail)', () => {
    expect(forbiddenImports(`import { app } from 'electron';\nimport x from "../../renderer/app.js";\nconst r = require('react')`))
      .toEqual(['electron', '../../renderer/app.js', 'react']);
    expect(forbiddenImports(`import { z } from 'zod';\nimport { x } from './mainframe.js'`)).toEqual([]);
  });

  it('src/ imports no electron, react, main/ or renderer/', () => {
    const offenders = files(join(ROOT, 'src')).flatMap((f) =>
      forbiddenImports(readFileSync(f, 'utf8')).map((imp) => `${relative(ROOT, f)} imports ${imp}`),
    );
    expect(offenders).toEqual([]);
  });
});
