#!/usr/bin/env node
// Runs every test/bench/*.bench.ts (or those matching the arguments) one after another.
// Each benchmark prints its figures as ratios against a baseline measured in the same run.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';

const filters = process.argv.slice(2);
const files = readdirSync('test/bench').filter((f) => f.endsWith('.bench.ts')).filter((f) => !filters.length || filters.some((x) => f.includes(x))).sort();
let failed = 0;
for (const f of files) {
  process.stdout.write(`\n== ${f}\n`);
  const r = spawnSync(process.execPath, ['--import', 'tsx', `test/bench/${f}`], { stdio: 'inherit', env: { ...process.env, NODE_ENV: 'production' } });
  if (r.status !== 0) failed++;
}
process.stdout.write(`\n${files.length - failed} benchmarks ran, ${failed} failed to run\n`);
process.exit(failed ? 1 : 0);
