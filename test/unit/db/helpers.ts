import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import type { KinesisEvent, KinesisEventRecord } from '../../../src/db/batch-writer.js';
import { EmbeddedPostgres } from '../../../src/targets/local/postgres.js';

/** The machine's server (CI starts it); each run works in its own fresh database there. */
export const MACHINE_URL = process.env.DATABASE_URL_TEST ?? 'postgres://postgres@127.0.0.1:5432/test';

import { freshDatabase, type TestDatabase } from '../../helpers/pg.js';
import { removeExternalCluster } from '../../helpers/project.js';
export { freshDatabase, type TestDatabase };

export interface TestServer {
  name: 'machine' | 'embedded';
  /** A URL on the server from which fresh databases are created. */
  url: string;
  /** An empty place for one test's tables: a fresh database on the machine; on the embedded server, whose roles
   * may not create databases (and pg_hba admits only its own), a fresh schema in it, owned by the owner role. */
  fresh(): Promise<TestDatabase>;
  stop(): Promise<void>;
}

export async function machineServer(): Promise<TestServer> {
  return { name: 'machine', url: MACHINE_URL, fresh: () => freshDatabase(MACHINE_URL), stop: async () => undefined };
}

/** An embedded server in a temp state dir (mode 755: as root, the server runs as `postgres`). */
export async function embeddedServer(): Promise<TestServer & { server: EmbeddedPostgres; stateDir: string }> {
  const stateDir = mkdtempSync(join(tmpdir(), 'iotctl-pg-'));
  chmodSync(stateDir, 0o755);
  const server = new EmbeddedPostgres({ stateDir });
  await server.start();
  return {
    name: 'embedded',
    url: server.url,
    server,
    stateDir,
    async fresh() {
      const name = `iotctl_test_${randomBytes(5).toString('hex')}`;
      await withPg(server.url, (c) => c.query(`CREATE SCHEMA ${name}`));
      const url = new URL(server.url);
      url.searchParams.set('options', `-c search_path=${name}`);
      return { url: url.toString(), name, drop: () => withPg(server.url, (c) => c.query(`DROP SCHEMA ${name} CASCADE`)).then(() => undefined) };
    },
    async stop() {
      await server.stop();
      removeExternalCluster(stateDir);
      rmSync(stateDir, { recursive: true, force: true });
    },
  };
}

export async function withPg<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client(url);
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

let seq = 49590338271490256608559692538361571095921575989136588898n;

/** A Kinesis record as Lambda delivers it (`Records[i]` of the event). */
export function kinesisRecord(data: unknown, opts: { partitionKey?: string; sequenceNumber?: string; arrival?: number; shard?: string; stream?: string; raw?: Buffer } = {}): KinesisEventRecord {
  const sequenceNumber = opts.sequenceNumber ?? String(seq++);
  const shard = opts.shard ?? 'shardId-000000000000';
  const bytes = opts.raw ?? Buffer.from(JSON.stringify(data));
  return {
    kinesis: {
      kinesisSchemaVersion: '1.0',
      partitionKey: opts.partitionKey ?? 'pk-1',
      sequenceNumber,
      data: bytes.toString('base64'),
      approximateArrivalTimestamp: (opts.arrival ?? Date.now()) / 1000,
    },
    eventSource: 'aws:kinesis',
    eventVersion: '1.0',
    eventID: `${shard}:${sequenceNumber}`,
    eventName: 'aws:kinesis:record',
    invokeIdentityArn: 'arn:aws:iam::123456789012:role/iotctl-ingest',
    awsRegion: 'us-east-1',
    eventSourceARN: `arn:aws:kinesis:us-east-1:123456789012:stream/${opts.stream ?? 'telemetry'}`,
  };
}

export function kinesisEvent(records: KinesisEventRecord[]): KinesisEvent {
  return { Records: records };
}

export async function count(url: string, sql: string, values: unknown[] = []): Promise<number> {
  return withPg(url, async (c) => Number((await c.query(sql, values)).rows[0].n));
}
