/**
 * Builds the operator console into dist/renderer. `base: './'` keeps every URL relative, so the same build works
 * when `sluice serve` serves it over http://127.0.0.1:PORT/ and when the Electron shell loads it from its own
 * protocol (issue 8). Everything is bundled: Monaco, its editor worker and its codicon font are files of the
 * build, never fetched from a CDN (the console runs under a CSP without remote sources).
 */
import react from '@vitejs/plugin-react';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const here = fileURLToPath(new URL('.', import.meta.url));

export default defineConfig({
  root: here,
  base: './',
  plugins: [react()],
  logLevel: 'warn',
  build: {
    outDir: fileURLToPath(new URL('../dist/renderer', import.meta.url)),
    emptyOutDir: true,
    // No data: URLs for fonts or images: every asset is a file the CSP names by origin.
    assetsInlineLimit: 0,
    // Monaco is large by nature; it is loaded only by the Rules screen (a separate chunk).
    chunkSizeWarningLimit: 6000,
    reportCompressedSize: false,
    sourcemap: false,
  },
  worker: { format: 'es' },
});
