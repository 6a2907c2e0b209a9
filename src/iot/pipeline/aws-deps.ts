import type { PipelineDeps, ThingDescription } from './types.js';

/**
 * The AWS side of a pipeline's dependencies, shared by the pipeline-transform Lambda (templates/pipeline-transform,
 * with plain SDK clients) and `analytics reprocess` on AWS (with the CLI's AwsClients). Each caller passes the
 * SDK call itself, so this module stays free of SDK imports and both run the same mapping.
 */

/** The fields of an IoT DescribeThing answer that deviceRegistryEnrich copies. */
export interface DescribedThing {
  thingName?: string;
  thingTypeName?: string;
  attributes?: Record<string, string>;
}

/**
 * deviceRegistryEnrich over IoT DescribeThing, each thing remembered for `ttlMs` (devices rarely change between
 * batches). `describe` resolves undefined when the thing does not exist.
 */
export function thingLookup(describe: (thingName: string) => Promise<DescribedThing | undefined>, ttlMs: number, now: () => number = Date.now): NonNullable<PipelineDeps['lookupThing']> {
  const cache = new Map<string, { at: number; thing: ThingDescription | undefined }>();
  return async (thingName) => {
    const hit = cache.get(thingName);
    if (hit && now() - hit.at < ttlMs) return hit.thing;
    const out = await describe(thingName);
    const thing = out ? { thingName: out.thingName ?? thingName, thingTypeName: out.thingTypeName, attributes: out.attributes ?? {} } : undefined;
    cache.set(thingName, { at: now(), thing });
    return thing;
  };
}

/** What a Lambda Invoke answers. */
export interface InvokeAnswer {
  Payload?: Uint8Array;
  FunctionError?: string;
}

/** The lambda activity: a synchronous Invoke with the messages array, as IoT Analytics calls pipeline functions. */
export function lambdaInvoke(call: (functionName: string, payload: Uint8Array) => Promise<InvokeAnswer>): NonNullable<PipelineDeps['invoke']> {
  return async (functionName, messages) => {
    const out = await call(functionName, Buffer.from(JSON.stringify(messages)));
    const text = out.Payload ? Buffer.from(out.Payload).toString('utf8') : 'null';
    if (out.FunctionError) throw new Error(`${out.FunctionError}: ${text.slice(0, 500)}`);
    return JSON.parse(text);
  };
}

/** A Glue table as GetTable returns it (the parts UpdateTable needs back). */
export interface GlueTableLike<C, P> {
  Name?: string;
  TableType?: string;
  Parameters?: Record<string, string>;
  PartitionKeys?: P;
  StorageDescriptor?: C & { Columns?: unknown };
}

/** The UpdateTable input that changes only the columns: UpdateTable replaces the whole definition. */
export function tableInputWithColumns<C extends object, P>(t: GlueTableLike<C, P>, columns: readonly { name: string; type: string }[]) {
  return {
    Name: t.Name!,
    TableType: t.TableType,
    Parameters: t.Parameters,
    PartitionKeys: t.PartitionKeys,
    StorageDescriptor: { ...t.StorageDescriptor, Columns: columns.map((c) => ({ Name: c.name, Type: c.type })) },
  };
}
