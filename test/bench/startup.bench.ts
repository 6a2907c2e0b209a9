// Start-up: `iotctl --version` wall time vs a bare `node -e 0` (target: at most 2.5x).
// Each iteration runs both back to back and the ratio is taken per pair, so load that comes and goes on
// this shared machine hits both sides alike. Run: node --import tsx test/bench/startup.bench.ts (build first)
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

const RUNS = Number(process.env.BENCH_RUNS ?? 21);
const bin = join(import.meta.dirname, '../../bin/run.js');

function time(args: string[]): number {
  const t = performance.now();
  const r = spawnSync(process.execPath, args, { stdio: 'ignore' });
  if (r.status !== 0) throw new Error(`node ${args.join(' ')} exited ${r.status}`);
  return performance.now() - t;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const pairs = (args: string[]) => Array.from({ length: RUNS }, () => {
  const node = time(['-e', '0']);
  const cli = time(args);
  return { node, cli, ratio: cli / node };
});

for (const [label, args, target] of [['iotctl --version', [bin, '--version'], 2.5], ['iotctl device list --help', [bin, 'device', 'list', '--help'], undefined]] as const) {
  const p = pairs([...args]);
  const ratio = median(p.map((x) => x.ratio));
  const verdict = target ? `(target <= ${target}x): ${ratio <= target ? 'PASS' : 'FAIL'}` : '';
  console.log(`${label.padEnd(26)} ${median(p.map((x) => x.cli)).toFixed(0)} ms vs node -e 0 ${median(p.map((x) => x.node)).toFixed(0)} ms: median ratio ${ratio.toFixed(2)}x ${verdict}`);
}
