/**
 * Runs steps as a dependency graph: each starts as soon as every step it names in `after` has succeeded, at
 * most `limit` at once. After a failure no new step starts (those not started are `skipped`); the ones
 * running are awaited, so what was done stays consistent, then the first error is thrown.
 */
export interface GraphStep {
  id: string;
  after: string[];
  run(): Promise<unknown> | unknown;
}

export type GraphEvent = { id: string; state: 'started' | 'done' | 'skipped' } | { id: string; state: 'failed'; error: unknown };

export async function runGraph(steps: GraphStep[], opts: { limit?: number; on?: (e: GraphEvent) => void } = {}): Promise<void> {
  const limit = opts.limit ?? Infinity;
  const ids = new Set(steps.map((s) => s.id));
  for (const s of steps) for (const a of s.after) if (!ids.has(a)) throw new Error(`bug: step ${s.id} waits for unknown step ${a}`);
  const state = new Map<string, 'waiting' | 'running' | 'done' | 'failed' | 'skipped'>(steps.map((s) => [s.id, 'waiting']));
  let failure: { error: unknown } | undefined;
  let running = 0;
  return new Promise<void>((resolve, reject) => {
    const pump = () => {
      if (failure) {
        for (const s of steps) if (state.get(s.id) === 'waiting') (state.set(s.id, 'skipped'), opts.on?.({ id: s.id, state: 'skipped' }));
      } else {
        for (const s of steps) {
          if (running >= limit) break;
          if (state.get(s.id) !== 'waiting' || !s.after.every((a) => state.get(a) === 'done')) continue;
          state.set(s.id, 'running');
          running++;
          opts.on?.({ id: s.id, state: 'started' });
          Promise.resolve()
            .then(() => s.run())
            .then(
              () => (state.set(s.id, 'done'), opts.on?.({ id: s.id, state: 'done' })),
              (error) => (state.set(s.id, 'failed'), (failure ??= { error }), opts.on?.({ id: s.id, state: 'failed', error })),
            )
            .finally(() => {
              running--;
              pump();
            });
        }
      }
      if (running > 0) return;
      if (failure) return reject(failure.error);
      const stuck = steps.filter((s) => state.get(s.id) === 'waiting');
      if (stuck.length) return reject(new Error(`bug: steps ${stuck.map((s) => s.id).join(', ')} wait in a cycle`));
      resolve();
    };
    pump();
  });
}
