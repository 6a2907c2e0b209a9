// Start-up: `iotctl --version` wall time vs a bare `node -e 0` (target: at most 2.5x).
// Run: node --import tsx test/bench/startup.bench.ts  (needs `npm run build` first)
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

const RUNS = Number(process.env.BENCH_RUNS ?? 15);
const bin = join(import.meta.dirname, '../../bin/run.js');

function median(cmd: string[]): number {
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t = performance.now();
    const r = spawnSync(process.execPath, cmd, { stdio: 'ignore' });
    if (r.status !== 0) throw new Error(`${cmd.join(' ')} exited ${r.status}`);
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}

// Interleave so machine noise hits both alike.
const node = median(['-e', '0']);
const version = median([bin, '--version']);
const help = median([bin, 'device', 'list', '--help']);
const node2 = median(['-e', '0']);
const baseline = Math.min(node, node2);
console.log(`node -e 0:              ${baseline.toFixed(0)} ms (median of ${RUNS})`);
console.log(`iotctl --version:       ${version.toFixed(0)} ms = ${(version / baseline).toFixed(2)}x node (target <= 2.5x): ${version / baseline <= 2.5 ? 'PASS' : 'FAIL'}`);
console.log(`iotctl device list -h:  ${help.toFixed(0)} ms = ${(help / baseline).toFixed(2)}x node`);
