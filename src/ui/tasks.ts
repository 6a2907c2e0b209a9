import { info } from './output.js';
import { runGraph, type GraphEvent } from '../services/graph.js';

/**
 * Multi-step progress (apply, lambda deploy, bulk registration, athena run, local up) on stderr:
 * a listr2 task list with each step's state and time on a terminal, one plain line per step when
 * piped, nothing with --json. listr2 is imported only on a terminal.
 */
export interface Step {
  title: string;
  /** `update` replaces the step's detail line (e.g. "RUNNING · 1.2 GB scanned"). */
  run(update: (detail: string) => void): Promise<unknown> | unknown;
  /** With `graph`: this step's id, and the ids of the steps it waits for (it starts once they succeeded). */
  id?: string;
  after?: string[];
  /** With `graph`: called when the step will not start (an earlier one failed). */
  onSkip?: () => void;
}

export type StepsMode = 'tty' | 'plain' | 'quiet';

export function stepsMode(json: boolean): StepsMode {
  if (json) return 'quiet';
  return process.stderr.isTTY && !process.env.CI ? 'tty' : 'plain';
}

/**
 * `concurrent`: the steps are independent (reads), run at once; the first failure is thrown once all have settled.
 * `graph`: each step starts once the steps it names in `after` have succeeded (services/graph.ts); after a failure
 * no new step starts, the running ones finish, then the first error is thrown.
 */
export async function runSteps(steps: Step[], mode: StepsMode, opts: { concurrent?: boolean; graph?: { limit?: number } } = {}): Promise<void> {
  if (opts.graph) return runStepGraph(steps, mode, opts.graph.limit);
  if (mode === 'tty') return runWithListr(steps, opts.concurrent);
  if (opts.concurrent) {
    const settled = await Promise.allSettled(steps.map((step) => runQuietStep(step, mode)));
    const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    return;
  }
  for (const step of steps) await runQuietStep(step, mode);
}

/** One step without listr2: plain mode prints its outcome and time, quiet mode nothing. */
async function runQuietStep(step: Step, mode: StepsMode): Promise<void> {
  const started = Date.now();
  try {
    await step.run((detail) => void detail);
  } catch (error) {
    if (mode === 'plain') info(`x ${step.title} failed after ${seconds(started)}`);
    throw error;
  }
  if (mode === 'plain') info(`✓ ${step.title} (${seconds(started)})`);
}

async function runWithListr(steps: Step[], concurrent = false): Promise<void> {
  const { Listr, ListrLogger, PRESET_TIMER, ProcessOutput } = await import('listr2');
  // Progress belongs on stderr: stdout carries only results.
  const logger = new ListrLogger({ processOutput: new ProcessOutput(process.stderr, process.stderr) });
  const list = new Listr(
    steps.map((step) => ({
      title: step.title,
      task: async (_ctx: unknown, task: { output: string }) => {
        await step.run((detail) => (task.output = detail));
      },
    })),
    {
      concurrent,
      exitOnError: true,
      // The command handles Ctrl-C itself (cancel in-flight calls, exit 2).
      registerSignalListeners: false,
      collectErrors: false,
      rendererOptions: { timer: PRESET_TIMER, collapseErrors: false, logger },
    },
  );
  await list.run();
}

async function runStepGraph(steps: Step[], mode: StepsMode, limit?: number): Promise<void> {
  const idOf = (s: Step, i: number) => s.id ?? String(i);
  const titles = new Map(steps.map((s, i) => [idOf(s, i), s.title]));
  // Per step: settles when the graph starts it (true) or skips it (false); and the detail setter of its row.
  type Gate = { open: (started: boolean) => void; opened: Promise<boolean>; finish: (error?: unknown) => void; finished: Promise<void>; update: (d: string) => void };
  const gate = new Map<string, Gate>();
  for (const [id] of titles) {
    let open!: Gate['open'];
    let finish!: Gate['finish'];
    const opened = new Promise<boolean>((r) => (open = r));
    const finished = new Promise<void>((resolve, reject) => (finish = (error) => (error === undefined ? resolve() : reject(error))));
    finished.catch(() => undefined); // read by the row only on a terminal
    gate.set(id, { open, opened, finish, finished, update: () => undefined });
  }
  const startedAt = new Map<string, number>();
  const on = (e: GraphEvent) => {
    const title = titles.get(e.id)!;
    if (e.state === 'started') startedAt.set(e.id, Date.now()), gate.get(e.id)!.open(true);
    if (e.state === 'skipped') gate.get(e.id)!.open(false), steps.find((s, i) => idOf(s, i) === e.id)?.onSkip?.();
    if (e.state === 'done') gate.get(e.id)!.finish();
    if (e.state === 'failed') gate.get(e.id)!.finish(e.error ?? new Error('failed'));
    if (mode !== 'plain') return;
    if (e.state === 'done') info(`✓ ${title} (${seconds(startedAt.get(e.id)!)})`);
    if (e.state === 'failed') info(`x ${title} failed after ${seconds(startedAt.get(e.id)!)}`);
    if (e.state === 'skipped') info(`- ${title}: not started (an earlier step failed)`);
  };
  const graph = runGraph(
    steps.map((s, i) => {
      const id = idOf(s, i);
      return { id, after: s.after ?? [], run: () => s.run((d) => gate.get(id)!.update(d)) };
    }),
    { limit, on },
  );
  if (mode !== 'tty') return graph;
  const { Listr, ListrLogger, PRESET_TIMER, ProcessOutput } = await import('listr2');
  const logger = new ListrLogger({ processOutput: new ProcessOutput(process.stderr, process.stderr) });
  const settled = graph.then(
    () => undefined,
    (error: unknown) => ({ error }),
  );
  const list = new Listr(
    steps.map((s, i) => {
      const id = idOf(s, i);
      return {
        title: s.title,
        task: async (_ctx: unknown, task: { output: string; skip(message?: string): void }) => {
          const g = gate.get(id)!;
          if (s.after?.length) task.output = `waiting for ${s.after.map((a) => titles.get(a)).join(', ')}`;
          g.update = (d) => (task.output = d);
          if (!(await g.opened)) return task.skip(`${s.title}: not started (an earlier step failed)`);
          task.output = '';
          await g.finished;
        },
      };
    }),
    { concurrent: true, exitOnError: false, registerSignalListeners: false, collectErrors: false, rendererOptions: { timer: PRESET_TIMER, collapseErrors: false, collapseSkips: false, logger } },
  );
  const rendered = list.run().catch(() => undefined);
  const outcome = await settled;
  await rendered;
  if (outcome) throw outcome.error;
}

function seconds(since: number): string {
  const ms = Date.now() - since;
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`;
}

/** A stage of `iotctl check` as the live list shows it. */
export interface LiveStage {
  stage: string;
  status: 'passed' | 'failed' | 'skipped' | 'not reached';
  ms: number | null;
  detail: string;
}

/**
 * `iotctl check` on a terminal: one listr2 row per stage, in order, each settling (✔, ✖, skipped) as its
 * observation arrives, with its time since the publish.
 */
export async function liveStages(): Promise<{ plan: (p: { stages: { id: string }[] }) => void; settled: (r: LiveStage) => void; done: () => Promise<void> }> {
  const { Listr, ListrLogger, PRESET_TIMER, ProcessOutput } = await import('listr2');
  const logger = new ListrLogger({ processOutput: new ProcessOutput(process.stderr, process.stderr) });
  const waiting = new Map<string, (r: LiveStage) => void>();
  const early = new Map<string, LiveStage>();
  let running: Promise<unknown> = Promise.resolve();
  return {
    plan(p) {
      const list = new Listr(
        p.stages.map((s) => ({
          title: s.id,
          task: async (_ctx: unknown, task: { title: string; skip(message?: string): void }) => {
            const r = early.get(s.id) ?? (await new Promise<LiveStage>((resolve) => waiting.set(s.id, resolve)));
            const ms = r.ms === null ? '' : ` (${r.ms} ms)`;
            if (r.status === 'passed') task.title = `${s.id}${ms}: ${r.detail}`;
            else if (r.status === 'failed') throw new Error(`${s.id}: ${r.detail}`);
            else task.skip(`${s.id}: ${r.status}, ${r.detail}`);
          },
        })),
        { concurrent: true, exitOnError: false, registerSignalListeners: false, collectErrors: false, rendererOptions: { timer: PRESET_TIMER, collapseErrors: false, collapseSkips: false, logger } },
      );
      running = list.run().catch(() => undefined);
    },
    settled(r) {
      const resolve = waiting.get(r.stage);
      if (resolve) resolve(r);
      else early.set(r.stage, r);
    },
    done: async () => void (await running),
  };
}
