/**
 * A stateful fake of the AWS IoT Analytics API at the SDK boundary (aws-sdk-client-mock): moto has no
 * IoT Analytics, and AWS ended the service on 2025-12-15, so nothing else can answer. The behaviour it
 * promises is written down in fake-iotanalytics.md; keep the two in step.
 */
import { mockClient } from 'aws-sdk-client-mock';
import * as iota from '@aws-sdk/client-iotanalytics';
import { translateError } from '../../src/targets/aws/sdk.js';

type Input = Record<string, any>;
type Kind = 'channel' | 'datastore' | 'pipeline' | 'dataset';

interface Stored {
  name: string;
  arn: string;
  body: Input;
  tags: Record<string, string>;
  creationTime: Date;
  lastUpdateTime: Date;
}

interface Content {
  versionId: string;
  state: 'CREATING' | 'SUCCEEDED' | 'FAILED';
  pollsLeft: number;
  reason?: string;
  csv: string;
  creationTime: Date;
}

export interface FakeIotAnalyticsOptions {
  /** Default page size of List* calls (a caller's smaller maxResults wins). Small, so paging is exercised. */
  pageSize?: number;
  /** GetDatasetContent polls a new content answers CREATING before it settles. */
  pollsToSettle?: number;
  region?: string;
  accountId?: string;
  /** Called when a content with an S3 delivery rule succeeds (the migrate test writes it to moto's S3). */
  deliver?: (bucket: string, key: string, body: string) => Promise<void>;
  /** The pre-signed URL of a content's CSV (a test serves it on loopback); an unreachable fake host by default. */
  dataUri?: (versionId: string) => string;
}

const MUTATING = /^(Create|Update|Delete|Tag|Untag)/;

export class FakeIotAnalytics {
  readonly store: Record<Kind, Map<string, Stored>> = { channel: new Map(), datastore: new Map(), pipeline: new Map(), dataset: new Map() };
  readonly contents = new Map<string, Content[]>();
  /** Rows held by each datastore, for `SELECT * FROM <datastore>` datasets. */
  readonly rows = new Map<string, Record<string, unknown>[]>();
  /** StartPipelineReprocessing requests per pipeline (they stay RUNNING: the fake processes no messages). */
  readonly reprocessing = new Map<string, { id: string; startTime?: Date; endTime?: Date; creationTime: Date }[]>();
  /** Every call, in order: `Op name`. */
  readonly calls: string[] = [];
  private mock?: ReturnType<typeof mockClient>;
  private gone?: () => Error;
  private seq = 0;

  constructor(readonly opts: FakeIotAnalyticsOptions = {}) {}

  install(): this {
    const mock = mockClient(iota.IoTAnalyticsClient);
    for (const op of Object.keys(this.handlers)) {
      const Command = (iota as unknown as Record<string, new (i: unknown) => unknown>)[`${op}Command`]!;
      mock.on(Command as never).callsFake((input: Input) => this.call(op, input));
    }
    this.mock = mock;
    return this;
  }

  restore(): void {
    this.mock?.restore();
  }

  /** Calls that change state (Create/Update/Delete/Tag), to assert that an unchanged plan makes none. */
  mutations(): string[] {
    return this.calls.filter((c) => MUTATING.test(c));
  }

  /** From now on every call fails as an ended service might: `code` with `message`, or a DNS failure. */
  end(how: { code: string; message: string } | 'dns'): void {
    this.gone =
      how === 'dns'
        ? () => Object.assign(new Error(`getaddrinfo ENOTFOUND iotanalytics.${this.region}.amazonaws.com`), { code: 'ENOTFOUND', name: 'Error' })
        : () => new iota.IoTAnalyticsServiceException({ name: how.code, message: how.message, $fault: 'client', $metadata: { httpStatusCode: 400 } });
  }

  revive(): void {
    this.gone = undefined;
  }

  private get region() {
    return this.opts.region ?? 'us-east-1';
  }
  private arn(kind: Kind, name: string) {
    return `arn:aws:iotanalytics:${this.region}:${this.opts.accountId ?? '123456789012'}:${kind}/${name}`;
  }

  private async call(op: string, input: Input): Promise<unknown> {
    this.calls.push(`${op} ${input.channelName ?? input.datastoreName ?? input.pipelineName ?? input.datasetName ?? input.resourceArn ?? ''}`.trim());
    try {
      if (this.gone) throw this.gone();
      return await this.handlers[op]!(input);
    } catch (e) {
      // The mock replaces `send`, so AwsClients' middleware does not run: translate exactly as it would.
      throw translateError(e, 'iotanalytics', op, input, {});
    }
  }

  private err(Ctor: typeof iota.ResourceNotFoundException | typeof iota.ResourceAlreadyExistsException | typeof iota.InvalidRequestException, message: string, extra: Input = {}): Error {
    return new (Ctor as new (o: unknown) => Error)({ message, $metadata: { httpStatusCode: Ctor === iota.InvalidRequestException ? 400 : Ctor === iota.ResourceNotFoundException ? 404 : 409 }, ...extra });
  }

  private get(kind: Kind, name: string): Stored {
    const r = this.store[kind].get(name);
    if (!r) throw this.err(iota.ResourceNotFoundException, `A resource with the name ${name} cannot be found.`);
    return r;
  }

  private create(kind: Kind, name: string, body: Input, tags: { key: string; value: string }[] = []): { name: string; arn: string } {
    if (this.store[kind].has(name)) {
      const arn = this.arn(kind, name);
      throw this.err(iota.ResourceAlreadyExistsException, `A resource with the ARN ${arn} already exists.`, { resourceId: name, resourceArn: arn });
    }
    const now = new Date();
    const stored = { name, arn: this.arn(kind, name), body: structuredClone(body), tags: Object.fromEntries(tags.map((t) => [t.key, t.value])), creationTime: now, lastUpdateTime: now };
    this.store[kind].set(name, stored);
    return { name, arn: stored.arn };
  }

  private update(kind: Kind, name: string, body: Input): Record<string, never> {
    const r = this.get(kind, name);
    r.body = { ...r.body, ...structuredClone(body) };
    r.lastUpdateTime = new Date();
    return {};
  }

  private remove(kind: Kind, name: string): Record<string, never> {
    this.get(kind, name);
    this.store[kind].delete(name);
    if (kind === 'dataset') this.contents.delete(name);
    return {};
  }

  /** List* paging: an opaque nextToken that is the offset, pages of min(maxResults, pageSize). */
  private page<T>(items: T[], input: Input): { items: T[]; nextToken?: string } {
    const size = Math.min(input.maxResults ?? Infinity, this.opts.pageSize ?? 2);
    let from = 0;
    if (input.nextToken !== undefined) {
      const decoded = Number(Buffer.from(String(input.nextToken), 'base64url').toString());
      if (!Number.isInteger(decoded) || decoded < 0) throw this.err(iota.InvalidRequestException, 'Invalid nextToken.');
      from = decoded;
    }
    const slice = items.slice(from, from + size);
    return { items: slice, ...(from + size < items.length ? { nextToken: Buffer.from(String(from + size)).toString('base64url') } : {}) };
  }

  /** Like the service: the chain starts at a channel activity, `next` names exist, and it ends at a datastore. */
  private checkActivities(activities: Input[] = []): void {
    const names = new Map(activities.map((a) => [Object.values(a)[0]!.name as string, a]));
    if (names.size !== activities.length) throw this.err(iota.InvalidRequestException, 'Activity names must be unique.');
    if (!activities[0]?.channel) throw this.err(iota.InvalidRequestException, 'The first activity must be a channel activity.');
    const seen = new Set<string>();
    for (let a: Input | undefined = activities[0]; a; ) {
      const body = Object.values(a)[0] as Input;
      if (seen.has(body.name)) throw this.err(iota.InvalidRequestException, 'Pipeline activities form a cycle.');
      seen.add(body.name);
      if (a.datastore) return;
      if (!body.next || !names.has(body.next)) throw this.err(iota.InvalidRequestException, `Activity ${body.name} must name an existing next activity.`);
      a = names.get(body.next);
    }
  }

  private readonly handlers: Record<string, (input: Input) => unknown> = {
    CreateChannel: (i) => {
      this.create('channel', i.channelName, { storage: i.channelStorage ?? { serviceManagedS3: {} }, retentionPeriod: i.retentionPeriod }, i.tags);
      return { channelName: i.channelName, channelArn: this.arn('channel', i.channelName), retentionPeriod: i.retentionPeriod };
    },
    UpdateChannel: (i) => this.update('channel', i.channelName, { retentionPeriod: i.retentionPeriod }),
    DeleteChannel: (i) => this.remove('channel', i.channelName),
    DescribeChannel: (i) => {
      const r = this.get('channel', i.channelName);
      return { channel: { name: r.name, arn: r.arn, status: 'ACTIVE', ...r.body, creationTime: r.creationTime, lastUpdateTime: r.lastUpdateTime } };
    },
    ListChannels: (i) => {
      const p = this.page([...this.store.channel.values()], i);
      return { channelSummaries: p.items.map((r) => ({ channelName: r.name, status: 'ACTIVE', creationTime: r.creationTime })), nextToken: p.nextToken };
    },

    CreateDatastore: (i) => {
      const fileFormatConfiguration = i.fileFormatConfiguration ?? { jsonConfiguration: {} };
      this.create('datastore', i.datastoreName, { storage: i.datastoreStorage ?? { serviceManagedS3: {} }, retentionPeriod: i.retentionPeriod, fileFormatConfiguration }, i.tags);
      return { datastoreName: i.datastoreName, datastoreArn: this.arn('datastore', i.datastoreName), retentionPeriod: i.retentionPeriod };
    },
    UpdateDatastore: (i) => {
      const r = this.get('datastore', i.datastoreName);
      // The service refuses to change the file format of an existing datastore.
      if (i.fileFormatConfiguration && Object.keys(i.fileFormatConfiguration)[0] !== Object.keys(r.body.fileFormatConfiguration)[0])
        throw this.err(iota.InvalidRequestException, 'The file format of a data store cannot be changed.');
      return this.update('datastore', i.datastoreName, { retentionPeriod: i.retentionPeriod });
    },
    DeleteDatastore: (i) => {
      this.rows.delete(i.datastoreName);
      return this.remove('datastore', i.datastoreName);
    },
    DescribeDatastore: (i) => {
      const r = this.get('datastore', i.datastoreName);
      return { datastore: { name: r.name, arn: r.arn, status: 'ACTIVE', ...r.body, creationTime: r.creationTime, lastUpdateTime: r.lastUpdateTime } };
    },
    ListDatastores: (i) => {
      const p = this.page([...this.store.datastore.values()], i);
      return { datastoreSummaries: p.items.map((r) => ({ datastoreName: r.name, status: 'ACTIVE', creationTime: r.creationTime })), nextToken: p.nextToken };
    },

    CreatePipeline: (i) => {
      this.checkActivities(i.pipelineActivities);
      this.create('pipeline', i.pipelineName, { activities: i.pipelineActivities }, i.tags);
      return { pipelineName: i.pipelineName, pipelineArn: this.arn('pipeline', i.pipelineName) };
    },
    UpdatePipeline: (i) => {
      this.checkActivities(i.pipelineActivities);
      return this.update('pipeline', i.pipelineName, { activities: i.pipelineActivities });
    },
    DeletePipeline: (i) => this.remove('pipeline', i.pipelineName),
    DescribePipeline: (i) => {
      const r = this.get('pipeline', i.pipelineName);
      const reprocessingSummaries = (this.reprocessing.get(r.name) ?? []).map(({ id, creationTime }) => ({ id, status: 'RUNNING', creationTime }));
      return { pipeline: { name: r.name, arn: r.arn, ...r.body, reprocessingSummaries, creationTime: r.creationTime, lastUpdateTime: r.lastUpdateTime } };
    },
    StartPipelineReprocessing: (i) => {
      this.get('pipeline', i.pipelineName);
      const id = `${String(++this.seq).padStart(8, '0')}-0000-4000-8000-000000000001`;
      const list = this.reprocessing.get(i.pipelineName) ?? [];
      list.push({ id, startTime: i.startTime, endTime: i.endTime, creationTime: new Date() });
      this.reprocessing.set(i.pipelineName, list);
      return { reprocessingId: id };
    },
    ListPipelines: (i) => {
      const p = this.page([...this.store.pipeline.values()], i);
      return { pipelineSummaries: p.items.map((r) => ({ pipelineName: r.name, reprocessingSummaries: [], creationTime: r.creationTime })), nextToken: p.nextToken };
    },

    CreateDataset: (i) => {
      if (!i.actions?.length) throw this.err(iota.InvalidRequestException, 'A dataset needs exactly one action.');
      const { datasetName, tags, ...body } = i;
      this.create('dataset', datasetName, { contentDeliveryRules: [], ...body }, tags);
      return { datasetName, datasetArn: this.arn('dataset', datasetName), retentionPeriod: i.retentionPeriod };
    },
    UpdateDataset: (i) => {
      const { datasetName, ...body } = i;
      // UpdateDataset replaces the whole definition: what the call leaves out is gone.
      const r = this.get('dataset', datasetName);
      r.body = { contentDeliveryRules: [], ...structuredClone(body) };
      r.lastUpdateTime = new Date();
      return {};
    },
    DeleteDataset: (i) => this.remove('dataset', i.datasetName),
    DescribeDataset: (i) => {
      const r = this.get('dataset', i.datasetName);
      return { dataset: { name: r.name, arn: r.arn, status: 'ACTIVE', ...r.body, creationTime: r.creationTime, lastUpdateTime: r.lastUpdateTime } };
    },
    ListDatasets: (i) => {
      const p = this.page([...this.store.dataset.values()], i);
      return { datasetSummaries: p.items.map((r) => ({ datasetName: r.name, status: 'ACTIVE', creationTime: r.creationTime })), nextToken: p.nextToken };
    },

    CreateDatasetContent: (i) => {
      const d = this.get('dataset', i.datasetName);
      const versionId = i.versionId ?? `${String(++this.seq).padStart(8, '0')}-0000-4000-8000-000000000000`;
      const sql: string = d.body.actions?.[0]?.queryAction?.sqlQuery ?? '';
      const from = /^\s*select\s+\*\s+from\s+(\w+)\s*$/i.exec(sql)?.[1];
      const known = from && this.store.datastore.has(from);
      const list = this.contents.get(i.datasetName) ?? [];
      list.push({
        versionId,
        state: 'CREATING',
        pollsLeft: this.opts.pollsToSettle ?? 3,
        creationTime: new Date(),
        ...(from && !known ? { reason: `Table ${from} does not exist`, csv: '' } : { csv: csvOf(from ? (this.rows.get(from) ?? []) : []) }),
      });
      this.contents.set(i.datasetName, list);
      return { versionId };
    },
    GetDatasetContent: async (i) => {
      const d = this.get('dataset', i.datasetName);
      const list = this.contents.get(i.datasetName) ?? [];
      const v = i.versionId ?? '$LATEST';
      const c =
        v === '$LATEST' ? list.at(-1) : v === '$LATEST_SUCCEEDED' ? list.filter((x) => x.state === 'SUCCEEDED').at(-1) : list.find((x) => x.versionId === v);
      if (!c) throw this.err(iota.ResourceNotFoundException, `Dataset content ${v} of ${i.datasetName} cannot be found.`);
      if (c.state === 'CREATING' && --c.pollsLeft <= 0) {
        c.state = c.reason ? 'FAILED' : 'SUCCEEDED';
        if (c.state === 'SUCCEEDED') await this.deliverContent(d, c);
      }
      const dataURI = this.opts.dataUri?.(c.versionId) ?? `https://aws-iot-analytics-dataset-fake.s3.${this.region}.amazonaws.com/results/${c.versionId}.csv?X-Amz-Signature=fake`;
      const entries = c.state === 'SUCCEEDED' ? [{ entryName: 'query', dataURI }] : [];
      return { entries, timestamp: c.creationTime, status: { state: c.state, ...(c.reason && c.state === 'FAILED' ? { reason: c.reason } : {}) } };
    },
    ListDatasetContents: (i) => {
      this.get('dataset', i.datasetName);
      const p = this.page([...(this.contents.get(i.datasetName) ?? [])].reverse(), i);
      return { datasetContentSummaries: p.items.map((c) => ({ version: c.versionId, status: { state: c.state }, creationTime: c.creationTime })), nextToken: p.nextToken };
    },

    ListTagsForResource: (i) => ({ tags: Object.entries(this.byArn(i.resourceArn).tags).map(([key, value]) => ({ key, value })) }),
    TagResource: (i) => {
      Object.assign(this.byArn(i.resourceArn).tags, Object.fromEntries(i.tags.map((t: { key: string; value: string }) => [t.key, t.value])));
      return {};
    },
  };

  /** The CSV a content version delivers (what its dataURI serves). */
  csv(versionId: string): string | undefined {
    for (const list of this.contents.values()) for (const c of list) if (c.versionId === versionId && c.state === 'SUCCEEDED') return c.csv;
    return undefined;
  }

  private byArn(arn: string): Stored {
    for (const kind of Object.keys(this.store) as Kind[]) for (const r of this.store[kind].values()) if (r.arn === arn) return r;
    throw this.err(iota.ResourceNotFoundException, `A resource with the ARN ${arn} cannot be found.`);
  }

  private async deliverContent(d: Stored, c: Content): Promise<void> {
    for (const rule of d.body.contentDeliveryRules ?? []) {
      const s3 = rule.destination?.s3DestinationConfiguration;
      if (!s3 || !this.opts.deliver) continue;
      const key = String(s3.key)
        .replaceAll('!{iotanalytics:versionId}', c.versionId)
        .replaceAll('!{iotanalytics:creationTime}', c.creationTime.toISOString())
        .replaceAll('!{iotanalytics:scheduleTime}', c.creationTime.toISOString());
      await this.opts.deliver(s3.bucket, key, c.csv);
    }
  }

  /** Test setup: resources that "already exist in the account", created as the console would (no iotctl tag). */
  seed(kind: Kind, name: string, body: Input, tags: Record<string, string> = {}): void {
    this.create(kind, name, body, Object.entries(tags).map(([key, value]) => ({ key, value })));
  }
}

function csvOf(rows: Record<string, unknown>[]): string {
  const cols = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const cell = (v: unknown) => {
    const s = v === undefined || v === null ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v);
    return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  return [cols.join(','), ...rows.map((r) => cols.map((c) => cell(r[c])).join(','))].join('\n') + '\n';
}
