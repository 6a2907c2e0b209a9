#!/usr/bin/env node
// Runs every test file in its own process (isolation for servers and ports), three at a time,
// and ends with the "N passed, M failed" line CI reads. uvu prints Total/Passed per file.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const roots = process.argv.slice(2).length ? process.argv.slice(2) : ['test/unit', 'test/aws', 'test/contract', 'test/e2e', 'test/security'];
// The long end-to-end and contract files start first, so no slow file is left running alone at the end.
const slowFirst = (f) => (/^test\/(e2e|contract|security)\//.test(f) ? 0 : 1);
const files = roots
  .filter((r) => existsSync(r))
  .flatMap((r) => (statSync(r).isDirectory() ? walk(r) : [r]))
  .filter((f) => /\.test\.tsx?$/.test(f))
  .sort((a, b) => slowFirst(a) - slowFirst(b) || a.localeCompare(b));
// Three at a time on two cores: most files wait on servers, sockets and timers rather than compute.
const concurrency = Number(process.env.TEST_CONCURRENCY ?? 3);

function walk(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)]));
}

function runFile(file) {
  return new Promise((resolve) => {
    const started = Date.now();
    const child = spawn(process.execPath, ['--import', 'tsx', file], { env: { ...process.env, FORCE_COLOR: '0', NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => { out += `\n[timeout] ${file} killed after 300s\n`; child.kill('SIGKILL'); }, 300_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      const plain = out.replace(/\x1b\[[0-9;]*m/g, '');
      const total = Number(/Total:\s+(\d+)/.exec(plain)?.[1] ?? 0);
      const passed = Number(/Passed:\s+(\d+)/.exec(plain)?.[1] ?? 0);
      // A file that crashed before reporting counts as one failure.
      const failed = code === 0 ? total - passed : Math.max(1, total - passed);
      resolve({ file, code, total, passed, failed, out: plain, ms: Date.now() - started });
    });
  });
}

const results = [];
const queue = [...files];
await Promise.all(Array.from({ length: concurrency }, async () => {
  while (queue.length) {
    const file = queue.shift();
    const r = await runFile(file);
    results.push(r);
    const status = r.failed ? 'FAIL' : 'ok  ';
    process.stdout.write(`${status} ${file} (${r.passed}/${r.total}, ${(r.ms / 1000).toFixed(1)}s)\n`);
    if (r.failed) process.stdout.write(r.out.split('\n').map((l) => '    ' + l).join('\n') + '\n');
  }
}));

const passed = results.reduce((s, r) => s + r.passed, 0);
const failed = results.reduce((s, r) => s + r.failed, 0);
process.stdout.write(`${passed} passed, ${failed} failed\n`);
process.exit(failed || results.length === 0 ? 1 : 0);
