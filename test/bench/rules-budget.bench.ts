// What the per-message evaluation budget costs on the hot path, against the unbudgeted evaluation
// of the same rules in the same run: the evaluator's deadline checks alone, the rules runtime's way
// (checks plus one V8 watchdog per 10 ms slice of evaluations), and, for comparison, one watchdog
// per evaluation (node:vm with a timeout around each message).
// Run: node --import tsx test/bench/rules-budget.bench.ts

import { compileRule, evaluationBudget, runWithinBudget, type EvaluationBudget } from '../../src/iot/sql/index.js';

const RULES = {
  telemetry: "SELECT *, topic(3) AS device, timestamp() AS ts FROM 'dt/+/+/telemetry' WHERE temperature > 20",
  regex: "SELECT deviceId, regexp_replace(deviceId, '^sensor-0*', '') AS n FROM 'dt/#' WHERE regexp_matches(deviceId, '^sensor-\\d+$') AND status = 'ok'",
};
const BUDGET_MS = 100;
const SLICE_MS = 10;
const RUN_MS = Number(process.env.BENCH_MS ?? 500);
const PAYLOADS = 1024;

const encoder = new TextEncoder();
const payloads = Array.from({ length: PAYLOADS }, (_, i) =>
  encoder.encode(JSON.stringify({ deviceId: `sensor-${String(i).padStart(5, '0')}`, temperature: 15 + ((i * 7) % 20) + 0.25, humidity: 40 + (i % 30), status: i % 10 === 0 ? 'warn' : 'ok', seq: i })),
);
const topics = Array.from({ length: 16 }, (_, i) => `dt/site${i % 4}/dev${i}/telemetry`);

type Evaluate = (i: number, budget?: EvaluationBudget) => unknown;

/** Evaluations per second for about RUN_MS; `slice` runs a batch of evaluations the way a caller would. */
function measure(slice: (from: number) => number): number {
  for (let i = 0; i < 20; i++) slice(i * 1000); // warm-up
  let done = 0;
  const start = performance.now();
  while (performance.now() - start < RUN_MS) done += slice(done);
  return done / ((performance.now() - start) / 1000);
}

const plain = (evaluate: Evaluate) => (from: number) => {
  for (let i = 0; i < 1000; i++) evaluate(from + i);
  return 1000;
};
const checked = (evaluate: Evaluate) => (from: number) => {
  for (let i = 0; i < 1000; i++) evaluate(from + i, evaluationBudget(BUDGET_MS));
  return 1000;
};
/** The rules runtime: evaluations with their own budget, one watchdog per SLICE_MS of them. */
const sliced = (evaluate: Evaluate) => (from: number) => {
  let n = 0;
  let budget: EvaluationBudget | undefined;
  const started = performance.now();
  try {
    runWithinBudget(() => {
      for (let now = started; now - started < SLICE_MS; now = performance.now()) {
        budget = evaluationBudget(BUDGET_MS, undefined, now);
        evaluate(from + n++, budget);
      }
    }, SLICE_MS + BUDGET_MS, () => budget);
  } catch {
    stopped++; // the process was descheduled past the budget (a loaded machine): the runtime retries such a job
  }
  return n;
};
const watchdogEach = (evaluate: Evaluate) => (from: number) => {
  for (let i = 0; i < 100; i++) {
    const budget = evaluationBudget(BUDGET_MS);
    try {
      runWithinBudget(() => evaluate(from + i, budget), BUDGET_MS, () => budget);
    } catch {
      stopped++;
    }
  }
  return 100;
};

let stopped = 0;
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const ROUNDS = 5; // interleaved, so a noisy neighbour slows every variant alike
for (const [name, sql] of Object.entries(RULES)) {
  const rule = compileRule(sql);
  const evaluate: Evaluate = (i, budget) =>
    rule.evaluate({ topic: topics[i & 15]!, payload: payloads[i & (PAYLOADS - 1)]!, timestamp: 1_700_000_000_000 + i }, budget && { budget });
  const variants: [string, (from: number) => number][] = [
    ['no budget', plain(evaluate)],
    ['deadline checks', checked(evaluate)],
    [`checks + watchdog per ${SLICE_MS} ms slice (rules runtime)`, sliced(evaluate)],
    ['checks + watchdog per evaluation', watchdogEach(evaluate)],
  ];
  const runs = variants.map(() => [] as number[]);
  for (let r = 0; r < ROUNDS; r++) variants.forEach(([, slice], v) => runs[v]!.push(measure(slice)));
  const base = median(runs[0]!);
  console.log(`rule ${name}: ${sql}`);
  console.log(`  no budget: ${fmt(base)} evals/s (baseline, median of ${ROUNDS})`);
  for (let v = 1; v < variants.length; v++) {
    const perSecond = median(runs[v]!);
    console.log(`  ${variants[v]![0]}: ${fmt(perSecond)} evals/s = ${(perSecond / base).toFixed(2)}x baseline`);
  }
}
if (stopped) console.log(`${stopped} evaluation(s) stopped by the watchdog: the machine is loaded, figures are noisy`);
