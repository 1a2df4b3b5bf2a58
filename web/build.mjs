// Builds the console's front end into internal/console/dist, which is
// committed and embedded in the strom binary (go:embed), so that neither
// `go build` nor `make run` needs Node.
//
//   node build.mjs              write ../internal/console/dist
//   node build.mjs --out DIR    write DIR instead (the freshness test
//                               compares such a build with the committed one)
//
// The output is deterministic for a given esbuild version and sources.
import * as esbuild from 'esbuild';
import { copyFileSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const i = process.argv.indexOf('--out');
const out = resolve(i > 0 ? process.argv[i + 1] : join(here, '..', 'internal', 'console', 'dist'));

rmSync(out, { recursive: true, force: true });
mkdirSync(join(out, 'assets'), { recursive: true });

await esbuild.build({
  absWorkingDir: here,
  entryPoints: { app: 'src/main.ts', style: 'src/app.css' },
  outdir: join(out, 'assets'),
  bundle: true,
  minify: true,
  format: 'iife',
  target: ['es2020', 'chrome100', 'firefox100', 'safari15'],
  charset: 'utf8',
  legalComments: 'eof',
  sourcemap: false,
  logLevel: 'warning',
});

for (const f of readdirSync(join(here, 'static'))) {
  copyFileSync(join(here, 'static', f), join(out, f));
}
console.log(`built ${out}`);
