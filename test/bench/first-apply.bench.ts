// The first `apply --yes` of the init spec (`init --target aws`) on a realistic account: the built CLI against
// moto_server through the realism proxy (test/helpers/aws-realism.ts) with IAM propagation 10 s, new Kinesis and
// Firehose streams CREATING for 30 s and new functions Pending for 5 s. It prints the time next to the longest chain
// of dependent waits the plan holds (derived from the dry-run plan in the same run): target <= 1.25x that chain.
// Run: npm run build && node --import tsx test/bench/first-apply.bench.ts   (BENCH_WAIT_SCALE=0.2 for a quick run)
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { startMoto } from '../helpers/moto.js';
import { freshDatabase } from '../helpers/pg.js';
import { cli } from '../helpers/project.js';
import { initSpec } from '../../src/spec/init-template.js';

if (!existsSync('dist/commands/apply.js')) {
  console.error('dist/ is missing: run `npm run build` first (npm run bench does).');
  process.exit(1);
}
const SCALE = Number(process.env.BENCH_WAIT_SCALE ?? 1);
const TARGET = 1.25;
const I = 10_000 * SCALE; // a new role cannot be assumed yet
const K = 30_000 * SCALE; // a new Kinesis stream is CREATING
const F = 30_000 * SCALE; // a new Firehose stream is CREATING
const L = 5_000 * SCALE; // a new function is Pending

const db = await freshDatabase();
const moto = await startMoto({ realism: { latencyMs: 0, conformance: false, iamPropagationSeconds: I / 1000, creating: { kinesisMs: K, firehoseMs: F, lambdaMs: L } } });
const dir = mkdtempSync(join(tmpdir(), 'iotctl-bench-first-'));
writeFileSync(join(dir, 'iotctl.yaml'), initSpec('bench', 'aws'));
const env = { ...moto.env, IOTCTL_TARGET: 'aws', DATABASE_URL: db.url };
const run = (args: string[]) => cli(args, { cwd: dir, env, timeoutMs: 900_000 });

interface Item { action: string; kind: string; name: string }

/**
 * The longest chain of waits AWS imposes on this plan, whatever the client does: each path is a sequence of
 * waits that cannot overlap (a resource can only be created once what it names exists and can be assumed).
 */
function chains(items: Item[]): { path: string; ms: number }[] {
  const created = items.filter((i) => i.action === 'create' || i.action === 'replace');
  const has = (kind: string, name?: RegExp) => created.some((i) => i.kind === kind && (!name || name.test(i.name)));
  const out: { path: string; ms: number }[] = [];
  // Kinesis streams (the spec's): CREATING, then the event source mapping that reads it.
  if (has('stream', /^(?!ch-|pl-)/)) out.push({ path: `kinesis stream CREATING ${K / 1000} s → event source mapping`, ms: K });
  // A function: its role propagates, then CreateFunction, then Pending; its mapping or the schema (invoked) after.
  if (has('function')) out.push({ path: `function role propagation ${I / 1000} s → function Pending ${L / 1000} s → mapping / schema migration (invoke)`, ms: I + L });
  // A delivery stream: its role propagates, then CreateDeliveryStream. A rule that targets it needs it to exist, not
  // ACTIVE (IoT delivers only when the rule runs), so its CREATING ends no chain (shown below for reference).
  if (has('stream', /^(ch|pl)-/)) out.push({ path: `firehose role propagation ${I / 1000} s → CreateDeliveryStream → rule targeting it (rule role propagating meanwhile)`, ms: I });
  // A schedule or rule: its role propagates.
  if (has('schedule') || has('rule role')) out.push({ path: `scheduler / rule role propagation ${I / 1000} s → schedule / rule`, ms: I });
  return out.sort((a, b) => b.ms - a.ms);
}

try {
  const dry = await run(['apply', '--dry-run', '--json']);
  if (dry.code !== 0) throw new Error(`apply --dry-run failed:\n${dry.stderr}`);
  const items: Item[] = (JSON.parse(dry.stdout) as { plan: { items: Item[] }[] }).plan.flatMap((p) => p.items);
  const all = chains(items);
  const chain = all[0]!.ms;
  console.log(`plan: ${items.filter((i) => i.action !== 'noop').length} changes; waits: IAM propagation ${I / 1000} s, Kinesis/Firehose CREATING ${K / 1000}/${F / 1000} s, Lambda Pending ${L / 1000} s (scale ${SCALE})`);
  for (const c of all) console.log(`  chain ${(c.ms / 1000).toFixed(1)} s: ${c.path}`);
  const strictest = items.some((i) => i.kind === 'stream' && /^(ch|pl)-/.test(i.name) && i.action === 'create') ? I + F : 0;

  const t = performance.now();
  const applied = await run(['apply', '--yes']);
  const elapsed = performance.now() - t;
  if (applied.code !== 0) throw new Error(`apply --yes failed after ${(elapsed / 1000).toFixed(1)} s:\n${applied.stderr}`);
  const again = await run(['apply', '--dry-run']);
  if (!/No changes/.test(again.stderr)) throw new Error(`the init spec does not plan as a no-op after apply:\n${again.stderr}`);

  // The steps as apply printed them (plain mode: each with its own time).
  for (const line of applied.stderr.split('\n')) if (/^[✓x-] (Apply|Prune)/.test(line)) console.log(`  ${line}`);
  const byInjected = new Map<string, number>();
  for (const c of moto.realism!.calls()) if (c.injected) byInjected.set(c.injected, (byInjected.get(c.injected) ?? 0) + 1);
  const ratio = elapsed / chain;
  console.log(`first apply ${(elapsed / 1000).toFixed(1)} s, longest chain of dependent waits ${(chain / 1000).toFixed(1)} s: ${ratio.toFixed(2)}x (target <= ${TARGET}x)`);
  console.log(`  answered by the realism layer meanwhile: ${[...byInjected].map(([k, n]) => `${k} ${n}`).join(', ') || 'none'}; load average ${loadavg()[0]!.toFixed(1)}`);
  if (strictest > chain) console.log(`  (were each rule to wait for its delivery stream ACTIVE, the chain would be ${(strictest / 1000).toFixed(1)} s: ${(elapsed / strictest).toFixed(2)}x)`);
  console.log(ratio <= TARGET ? 'PASS' : 'FAIL');
} finally {
  await moto.stop();
  await db.drop();
  rmSync(dir, { recursive: true, force: true });
}
