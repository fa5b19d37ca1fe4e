/**
 * Writes schema/sluice-config.schema.json from the zod config model.
 * Run after `npm run build` as: node dist/scripts/gen-config-schema.js
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { configJsonSchemaText } from '../src/config/schema.js';

/** The repository root: the nearest directory above this script holding package.json (works from dist/ too). */
function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error('gen-config-schema: no package.json above this script');
    dir = parent;
  }
  return dir;
}

const root = repoRoot();
const out = join(root, 'schema', 'sluice-config.schema.json');
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, configJsonSchemaText());
console.log(`wrote ${relative(process.cwd(), out) || out}`);
