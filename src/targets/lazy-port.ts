/**
 * A port whose module loads on its first call; every method of such a port returns a promise, except the
 * `iterables`, which return an async iterable. `loaded()` is the port if something used it.
 * Both targets use it so that a command loads only the adapters (and SDK clients) it calls.
 */
export function lazyPort<P extends object, L extends P = P>(load: () => Promise<L>, iterables: (keyof P)[] = []): { port: P; loaded: () => Promise<L | undefined> } {
  let loaded: Promise<L> | undefined;
  // An optional method the adapter lacks (`devices.apiRates?.()` on local) answers undefined, as `?.` would.
  const method = (port: L, op: PropertyKey) => (port as unknown as Record<PropertyKey, ((...a: unknown[]) => unknown) | undefined>)[op]?.bind(port) ?? (() => undefined);
  const port = new Proxy({} as P, {
    get: (_t, op) => {
      if (op === 'then') return undefined;
      if (iterables.includes(op as keyof P)) {
        return async function* (...args: unknown[]) {
          yield* method(await (loaded ??= load()), op)(...args) as AsyncIterable<unknown>;
        };
      }
      return (...args: unknown[]) => (loaded ??= load()).then((p) => method(p, op)(...args));
    },
  });
  return { port, loaded: async () => loaded };
}
