import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../base-command.js';
import { parseTailStart, StreamArgumentError } from '../../iot/stream/tail.js';
import { NotFoundError, type TailFilter, type TailRecord } from '../../ports.js';
import { openTarget } from '../../targets/index.js';
import { UserError } from '../../ui/errors.js';
import { info, isTTY, warn } from '../../ui/output.js';

export default class StreamTail extends BaseCommand<typeof StreamTail> {
  static override summary = 'Follow a stream: every shard at once, with filters.';
  static override description =
    'On a terminal, records show live with their payload pretty-printed; piped (or with --json), one JSON object per line: ' +
    '{stream, shardId, sequenceNumber, partitionKey, approximateArrivalTimestamp, data}, data being the decoded JSON payload or base64. ' +
    'Ctrl-C stops it and prints how many records were shown on stderr. Locally it reads the state store directly, so it works while `iotctl local up` runs; on AWS it polls every open shard within the GetRecords limits.';
  static override examples = [
    '<%= config.bin %> stream tail',
    '<%= config.bin %> stream tail telemetry --from trim-horizon --device sensor-0001',
    `<%= config.bin %> stream tail telemetry --where "temperature > 30 AND startswith(device_id, 'sensor-')" --limit 10`,
    '<%= config.bin %> stream tail telemetry --from 2030-01-31T12:00:00Z | jq .data.temperature',
  ];
  static override args = { stream: Args.string({ description: 'Stream name (default: the only stream in iotctl.yaml).' }) };
  static override flags = {
    from: Flags.string({ description: 'Where to start: latest, trim-horizon, an ISO time, or a sequence number.', default: 'latest', env: 'IOTCTL_STREAM_FROM' }),
    'partition-key': Flags.string({ description: 'Only records with this partition key.', exclusive: ['device'] }),
    device: Flags.string({ description: 'Only records of this device: partition key or payload device_id equal to it.' }),
    where: Flags.string({ description: "An IoT SQL condition on the JSON payload, e.g. \"temperature > 30\"." }),
    limit: Flags.integer({ description: 'Stop after this many records.', min: 1 }),
  };

  async run(): Promise<void> {
    const stream = this.streamName();
    const filter: TailFilter = { partitionKey: this.flags['partition-key'], device: this.flags.device, where: await this.compileWhere() };
    let from;
    try {
      from = parseTailStart(this.flags.from);
    } catch (err) {
      throw new UserError((err as Error).message, 'Use --from latest, --from trim-horizon, --from 2030-01-31T12:00:00Z or --from <sequence number>.');
    }
    const target = await openTarget(this.ctx);
    const abort = new AbortController();
    const onSigint = () => abort.abort();
    // A closed pipe (`| head`) ends the tail like Ctrl-C does.
    const onStdoutError = (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE') abort.abort();
    };
    process.on('SIGINT', onSigint);
    process.on('SIGTERM', onSigint);
    process.stdout.on('error', onStdoutError);
    const live = isTTY() && !this.jsonEnabled();
    let view: Awaited<ReturnType<typeof import('../../ui/tail-view.js')['renderTailView']>> | undefined;
    let shown = 0;
    let started = false;
    try {
      const described = await target.streams.describe(stream);
      started = true;
      const records = target.streams.tail(stream, { from, filter, signal: abort.signal });
      if (live) {
        const { renderTailView } = await import('../../ui/tail-view.js');
        const filters = [this.flags['partition-key'] && `partition key ${this.flags['partition-key']}`, this.flags.device && `device ${this.flags.device}`, this.flags.where].filter(Boolean).join(', ');
        view = renderTailView({ stream, shards: described.shardList.filter((s) => s.open).length, filters });
      }
      for await (const record of records) {
        if (view) view.push(record);
        else if (!abort.signal.aborted) process.stdout.write(JSON.stringify(toJsonLine(record)) + '\n');
        if (++shown === this.flags.limit) break;
      }
    } catch (err) {
      if (err instanceof NotFoundError) throw this.notFound(stream, target.name);
      if (err instanceof StreamArgumentError) throw new UserError(err.message, 'Check --from: `iotctl stream describe` shows the sequence numbers the stream holds.');
      throw err;
    } finally {
      process.off('SIGINT', onSigint);
      process.off('SIGTERM', onSigint);
      process.stdout.off('error', onStdoutError);
      await view?.close();
      await target.close();
      if (started) info(`${shown} record${shown === 1 ? '' : 's'} shown from ${stream}.`);
    }
  }

  private streamName(): string {
    const declared = this.ctx.spec.spec.streams.map((s) => s.name);
    if (this.args.stream) return this.args.stream;
    if (declared.length === 1) return declared[0]!;
    throw new UserError(
      declared.length ? `iotctl.yaml declares ${declared.length} streams; which one?` : 'iotctl.yaml declares no stream.',
      declared.length ? `iotctl stream tail <${declared.join('|')}>` : 'Add one under `streams:` in iotctl.yaml, then run `iotctl apply`.',
      'USAGE',
    );
  }

  private notFound(stream: string, target: 'local' | 'aws'): UserError {
    const declared = this.ctx.spec.spec.streams.some((s) => s.name === stream);
    return new UserError(
      `Stream "${stream}" does not exist on the ${target === 'local' ? 'local platform' : 'aws target'}.`,
      declared ? (target === 'local' ? 'It is in iotctl.yaml: `iotctl local up` (or `iotctl apply`) creates it.' : 'It is in iotctl.yaml: `iotctl apply` creates it.') : '`iotctl stream list` shows the streams that exist.',
      'STREAM_NOT_FOUND',
    );
  }

  private async compileWhere(): Promise<((doc: unknown) => boolean) | undefined> {
    const where = this.flags.where;
    if (!where) return undefined;
    const { compileExpression, DEFAULT_EVALUATION_BUDGET_MS, evaluationBudget, runWithinBudget, SqlRuntimeError } = await import('../../iot/sql/index.js');
    let expr;
    try {
      expr = compileExpression(where);
    } catch (err) {
      throw new UserError(`--where is not a valid IoT SQL condition: ${(err as Error).message}`, `Write it as in a rule's WHERE clause, e.g. --where "temperature > 30 AND device_id = 'sensor-1'".`, 'USAGE');
    }
    return (doc) => {
      // A record is device input: a crafted payload must not stall the tail (same budget as the rules).
      const budget = evaluationBudget(DEFAULT_EVALUATION_BUDGET_MS);
      try {
        // As in a rule's WHERE: only a true result keeps the record (Undefined and errors drop it).
        return runWithinBudget(() => expr.evaluate(doc, {}, { budget }), DEFAULT_EVALUATION_BUDGET_MS, () => budget) === true;
      } catch (err) {
        if (err instanceof SqlRuntimeError && err.code === 'EVALUATION_TIMEOUT') warn(`a record was skipped: --where ${err.message}`);
        return false;
      }
    };
  }
}

function toJsonLine(r: TailRecord) {
  return { stream: r.stream, shardId: r.shardId, sequenceNumber: r.sequenceNumber, partitionKey: r.partitionKey, approximateArrivalTimestamp: r.approximateArrivalTimestamp, data: r.data };
}
