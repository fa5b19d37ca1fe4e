import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * The core under src/ runs without Electron or a browser: it must never import electron, react, main/ or
 * renderer/. This keeps the rule executable (DESIGN.md section 1).
 */
const ROOT = join(import.meta.dirname, '..', '..');
// Every import form (`from`, side-effect `import '...'`, dynamic import(), require()) of electron, react or
// react-dom (with any subpath, e.g. 'electron/main', 'react/jsx-runtime'), and any relative path that climbs out
// of src/ into main/ or renderer/ (however it is spelled: '../main', './../../renderer/x.js').
const FORBIDDEN =
  /(?:\bfrom\s*|\bimport\s*\(?\s*|\brequire\s*\(\s*)['"]((?:electron|react|react-dom)(?:\/[^'"]*)?|(?:\.\/)?(?:\.\.\/)+(?:\.\/)*(?:main|renderer)(?:\/[^'"]*)?)['"]/g;

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
    expect(forbiddenImports(`import 'electron';\nimport { app } from 'electron/main';\nimport { jsx } from 'react/jsx-runtime';`))
      .toEqual(['electron', 'electron/main', 'react/jsx-runtime']);
    expect(forbiddenImports(`export { a } from './../main/a.js';\nconst m = await import('../../renderer');\nimport x from "react-dom/client"`))
      .toEqual(['./../main/a.js', '../../renderer', 'react-dom/client']);
    expect(forbiddenImports(`import { r } from './react-helpers.js';\nimport y from '../mainframe/x.js';\nimport { e } from 'electron-store-like';`))
      .toEqual([]);
  });

  it('src/ imports no electron, react, main/ or renderer/', () => {
    const offenders = files(join(ROOT, 'src')).flatMap((f) =>
      forbiddenImports(readFileSync(f, 'utf8')).map((imp) => `${relative(ROOT, f)} imports ${imp}`),
    );
    expect(offenders).toEqual([]);
  });
});
