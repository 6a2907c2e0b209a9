import Database from 'better-sqlite3';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { mkdirSync } from 'node:fs';

/** The MQTT 5 properties of a publish that rules can read (get_mqtt_property, get_user_properties). */
export interface MqttProperties {
  contentType?: string;
  payloadFormatIndicator?: 0 | 1;
  responseTopic?: string;
  correlationData?: Buffer;
  userProperties?: Record<string, string | string[]>;
}

/** One message as the broker accepted it. The id and ingress time are fixed here, once, for every replay. */
export interface IngressMessage {
  seq: number;
  messageId: string;
  receivedAt: number;
  topic: string;
  clientId: string;
  principal: string;
  qos: number;
  payload: Buffer;
  /** MQTT 5 publishes only. */
  properties?: MqttProperties;
}

export type IngressInput = Omit<IngressMessage, 'seq' | 'messageId' | 'receivedAt'> & { messageId?: string; receivedAt?: number };

/**
 * The durable ingress log. `append` resolves only after the message is committed (fsync'd), so a QoS1
 * PUBACK sent afterwards means the message survives a crash. Appends arriving together share one
 * transaction and one fsync (group commit).
 */
export class IngressLog {
  private readonly db: Database.Database;
  private pending: { input: IngressInput; resolve: (m: IngressMessage) => void; reject: (e: Error) => void }[] = [];
  private flushScheduled = false;
  private readonly insert: Database.Statement;
  private readonly claimId: Database.Statement;
  private readonly selectAfter: Database.Statement;
  private listeners = new Set<() => void>();
  appended = 0;
  commits = 0;

  constructor(stateDir: string, private readonly clock: () => number = Date.now) {
    mkdirSync(stateDir, { recursive: true });
    this.db = new Database(join(stateDir, 'ingress.db'));
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.pragma('busy_timeout = 10000');
    // No secondary index on the hot path: generated ids are random UUIDs. Ids given by the caller (a
    // republish replayed after a crash) are deduplicated through the small ingress_given_ids table.
    this.db.exec(`CREATE TABLE IF NOT EXISTS ingress_log (
      seq INTEGER PRIMARY KEY AUTOINCREMENT, message_id TEXT NOT NULL, received_at INTEGER NOT NULL,
      topic TEXT NOT NULL, client_id TEXT NOT NULL, principal TEXT NOT NULL, qos INTEGER NOT NULL, payload BLOB NOT NULL);
      CREATE TABLE IF NOT EXISTS ingress_given_ids (message_id TEXT PRIMARY KEY, claimed_at INTEGER NOT NULL) WITHOUT ROWID;`);
    // MQTT 5 properties, as JSON (NULL for MQTT 3.1.1); added in place to a log written before they were kept.
    const columns = this.db.prepare('PRAGMA table_info(ingress_log)').all() as { name: string }[];
    if (!columns.some((c) => c.name === 'properties')) this.db.exec('ALTER TABLE ingress_log ADD COLUMN properties TEXT');
    this.insert = this.db.prepare('INSERT INTO ingress_log (message_id, received_at, topic, client_id, principal, qos, payload, properties) VALUES (?, ?, ?, ?, ?, ?, ?, ?)');
    this.claimId = this.db.prepare('INSERT OR IGNORE INTO ingress_given_ids (message_id, claimed_at) VALUES (?, ?)');
    this.selectAfter = this.db.prepare('SELECT seq, message_id, received_at, topic, client_id, principal, qos, payload, properties FROM ingress_log WHERE seq > ? ORDER BY seq LIMIT ?');
  }

  append(input: IngressInput): Promise<IngressMessage> {
    return new Promise((resolve, reject) => {
      this.pending.push({ input, resolve, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        // setImmediate lets every publish read from the sockets in this tick join the same commit.
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.flushScheduled = false;
    const batch = this.pending;
    this.pending = [];
    if (!batch.length) return;
    const results: IngressMessage[] = [];
    const now = this.clock();
    try {
      this.db.transaction(() => {
        for (const { input } of batch) {
          // seq -1: a caller-given id already in the log; nothing new was appended.
          if (input.messageId !== undefined && this.claimId.run(input.messageId, now).changes === 0) {
            results.push({ ...input, messageId: input.messageId, receivedAt: input.receivedAt ?? now, seq: -1 });
            continue;
          }
          const messageId = input.messageId ?? randomUUID();
          const receivedAt = input.receivedAt ?? now;
          const properties = input.properties ? encodeProperties(input.properties) : null;
          const seq = Number(this.insert.run(messageId, receivedAt, input.topic, input.clientId, input.principal, input.qos, input.payload, properties).lastInsertRowid);
          results.push({ seq, messageId, receivedAt, topic: input.topic, clientId: input.clientId, principal: input.principal, qos: input.qos, payload: input.payload, ...(input.properties && { properties: input.properties }) });
        }
      })();
    } catch (e) {
      for (const p of batch) p.reject(e as Error);
      return;
    }
    this.commits++;
    this.appended += batch.length;
    batch.forEach((p, i) => p.resolve(results[i]!));
    for (const l of this.listeners) l();
  }

  /** Called after each commit (the rules runtime wakes up instead of polling). */
  onAppend(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  readAfter(seq: number, limit: number): IngressMessage[] {
    const rows = this.selectAfter.all(seq, limit) as { seq: number; message_id: string; received_at: number; topic: string; client_id: string; principal: string; qos: number; payload: Buffer; properties: string | null }[];
    return rows.map((r) => ({
      seq: r.seq, messageId: r.message_id, receivedAt: r.received_at, topic: r.topic, clientId: r.client_id, principal: r.principal, qos: r.qos, payload: r.payload,
      ...(r.properties !== null && { properties: decodeProperties(r.properties) }),
    }));
  }

  lastSeq(): number {
    // AUTOINCREMENT's counter, not MAX(seq): it survives truncation of consumed entries.
    return (this.db.prepare("SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'ingress_log'), 0) AS s").get() as { s: number }).s;
  }

  /** Drop entries the rules runtime has checkpointed past and that are older than `olderThan` (ms epoch). */
  truncate(beforeSeq: number, olderThan: number): number {
    this.db.prepare('DELETE FROM ingress_given_ids WHERE claimed_at < ?').run(olderThan);
    return this.db.prepare('DELETE FROM ingress_log WHERE seq <= ? AND received_at < ?').run(beforeSeq, olderThan).changes;
  }


  close(): void {
    this.flush();
    this.db.close();
  }
}

/** Correlation data is binary: base64 in the JSON column. */
function encodeProperties(p: MqttProperties): string {
  return JSON.stringify({ ...p, ...(p.correlationData && { correlationData: p.correlationData.toString('base64') }) });
}

function decodeProperties(json: string): MqttProperties {
  const { correlationData, ...p } = JSON.parse(json) as Omit<MqttProperties, 'correlationData'> & { correlationData?: string };
  return correlationData === undefined ? p : { ...p, correlationData: Buffer.from(correlationData, 'base64') };
}
