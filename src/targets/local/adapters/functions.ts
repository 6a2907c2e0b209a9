import type { EventSourceMappingInfo, FailureRecord, FunctionDeployment, FunctionsPort, FunctionSummary, InvokeResult, LogEvent } from '../../../ports.js';
import { NotFoundError } from '../../../ports.js';
import { ensureCheckpointTable } from '../event-source-mapping.js';
import { installArtifact, LocalFunctions, type DeployedFunction } from '../functions.js';
import { DestinationNotFoundError } from '../sinks.js';
import type { Db } from '../store.js';
import { LocalStreams } from '../stream.js';
import { pause } from '../../pause.js';
import type { DatabaseRole } from '../../../db/roles.js';
import { templateDatabaseRole } from '../../../services/bundle.js';

/** What `lambda list --json` has always shown locally, beyond the port's summary. */
export interface LocalFunctionSummary extends FunctionSummary {
  artifactPath: string;
  revision: number;
  createdAt: string;
}

/** The FunctionsPort over the local Lambda service; invocations run in worker threads of this process. */
export class LocalFunctionsPort implements FunctionsPort {
  private service?: LocalFunctions;

  constructor(
    private readonly opts: {
      db: () => Db;
      stateDir: string;
      region: string;
      /** The platform's database for invocations as one role (what the daemon injects as DATABASE_URL). */
      databaseUrl: (role: DatabaseRole) => string | undefined;
      running: () => boolean;
    },
  ) {}

  private get fns(): LocalFunctions {
    return (this.service ??= new LocalFunctions(this.opts.db(), {
      region: this.opts.region,
      baseEnvironment: (fn): Record<string, string> => {
        const url = this.opts.databaseUrl(templateDatabaseRole(fn.template));
        return url ? { DATABASE_URL: url } : {};
      },
    }));
  }

  async list(): Promise<LocalFunctionSummary[]> {
    return this.fns.list().map(summary);
  }

  async get(name: string): Promise<LocalFunctionSummary | undefined> {
    const f = this.fns.get(name);
    return f && summary(f);
  }

  /** One local step (install, register), so no progress to report. */
  async deploy(d: FunctionDeployment): Promise<'created' | 'updated' | 'unchanged'> {
    const previous = this.fns.get(d.name);
    // Content-addressed, so an unchanged bundle lands on the file that runs now.
    const artifactPath = installArtifact(`${this.opts.stateDir}/functions`, d.name, { artifactPath: `${d.artifact.dir}/${d.artifact.entry}`, sha256: d.artifact.sha256 }, previous ? [previous.artifactPath] : []);
    return this.fns.register({
      name: d.name,
      template: d.template,
      artifactPath,
      sha256: d.artifact.sha256,
      handler: d.handler,
      timeoutSeconds: d.timeoutSeconds,
      memoryMb: d.memoryMb,
      environment: d.environment,
      eventSource: d.eventSource,
    });
  }

  async remove(name: string): Promise<boolean> {
    return this.fns.remove(name);
  }

  async invoke(name: string, event: unknown): Promise<InvokeResult> {
    try {
      return await this.fns.invoke(name, event);
    } catch (err) {
      if (err instanceof DestinationNotFoundError) throw new NotFoundError('function', name);
      throw err;
    }
  }

  async *logs(name: string, opts: { since?: number; limit?: number; follow?: boolean; signal?: AbortSignal }): AsyncIterable<LogEvent> {
    const fns = this.fns;
    // Logs outlive their function (as CloudWatch log groups do), so only a name with neither is unknown.
    if (fns.get(name) === undefined && fns.readLogs(name, { limit: 1 }).length === 0) throw new NotFoundError('function', name);
    let last = 0;
    for (const e of fns.readLogs(name, { since: opts.since, limit: opts.limit ?? 200 })) {
      last = e.id;
      yield { ...e, id: String(e.id) };
    }
    while (opts.follow && !opts.signal?.aborted) {
      for (const e of fns.readLogs(name, { afterId: last, limit: 1000 })) {
        last = e.id;
        yield { ...e, id: String(e.id) };
      }
      await pause(500, opts.signal);
    }
  }

  async failures(name: string, opts: { limit?: number }): Promise<FailureRecord[]> {
    return this.fns.listFailures(name, { limit: opts.limit }).map((f) => ({ ...f, id: String(f.id), createdAt: f.createdAt.toISOString() }));
  }

  /** One mapping per function with an event source; lag counts the records it has not processed yet. */
  async mappings(name?: string): Promise<EventSourceMappingInfo[]> {
    const db = this.opts.db();
    const streams = new LocalStreams(db, { region: this.opts.region });
    ensureCheckpointTable(db);
    const checkpoint = db.prepare('SELECT sequence_number FROM lambda_esm_checkpoints WHERE function_name = ? AND stream = ? AND shard_id = ?');
    const out: EventSourceMappingInfo[] = [];
    for (const f of this.fns.list()) {
      const es = f.eventSource;
      if (!es || (name !== undefined && f.name !== name)) continue;
      let lag: number | undefined;
      if (streams.hasStream(es.stream)) {
        lag = 0;
        for (const shardId of streams.listShards(es.stream)) {
          const cp = checkpoint.get(f.name, es.stream, shardId) as { sequence_number: string } | undefined;
          // A shard without a checkpoint is all backlog for TRIM_HORIZON; LATEST pins one on its first poll.
          lag += cp || es.startingPosition !== 'LATEST' ? streams.countAfter(es.stream, shardId, cp?.sequence_number) : 0;
        }
      }
      out.push({
        uuid: `${f.name}:${es.stream}`,
        functionName: f.name,
        stream: es.stream,
        state: lag === undefined ? 'WaitingForStream' : this.opts.running() ? 'Enabled' : 'Disabled',
        batchSize: es.batchSize,
        startingPosition: es.startingPosition,
        lag,
      });
    }
    return out;
  }

  /** Ends warm workers so the CLI can exit. */
  async close(): Promise<void> {
    await this.service?.stop();
  }
}

function summary(f: DeployedFunction): LocalFunctionSummary {
  return {
    name: f.name,
    arn: f.arn,
    template: f.template,
    artifactPath: f.artifactPath,
    location: f.artifactPath,
    sha256: f.sha256,
    handler: f.handler,
    timeoutSeconds: f.timeoutSeconds,
    memoryMb: f.memoryMb,
    environment: f.environment,
    eventSource: f.eventSource ?? null,
    revision: f.revision,
    createdAt: f.createdAt.toISOString(),
    updatedAt: f.updatedAt.toISOString(),
  };
}
