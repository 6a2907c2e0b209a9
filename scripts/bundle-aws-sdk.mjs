#!/usr/bin/env node
// Bundles the AWS SDK clients of the aws target into dist/vendor/aws-sdk/<service>.mjs, sharing chunks.
// Node loads one file per client instead of a few hundred modules: an aws command starts about 120 ms sooner.
// sdk.ts loads these when they exist (the built CLI) and the packages otherwise (tests run src/ with tsx).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import { SDK_PACKAGES } from '../dist/targets/aws/sdk-packages.js';

const root = join(import.meta.dirname, '..');
const entries = mkdtempSync(join(tmpdir(), 'iotctl-sdk-entries-'));
try {
  const entryPoints = Object.entries(SDK_PACKAGES).map(([name, pkg]) => {
    const file = join(entries, `${name}.mjs`);
    writeFileSync(file, `export * from '${pkg}';\n`);
    return file;
  });
  await build({
    entryPoints,
    absWorkingDir: root,
    nodePaths: [join(root, 'node_modules')],
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    mainFields: ['module', 'main'],
    outdir: join(root, 'dist/vendor/aws-sdk'),
    outExtension: { '.js': '.mjs' },
    chunkNames: 'chunks/[hash]',
    // CommonJS dependencies require() Node's built-ins; an ES module has no require of its own.
    banner: { js: "import { createRequire as __iotctlRequire } from 'node:module'; const require = __iotctlRequire(import.meta.url);" },
    legalComments: 'none',
    minify: true,
    logLevel: 'warning',
  });
} finally {
  rmSync(entries, { recursive: true, force: true });
}
