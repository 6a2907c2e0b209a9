// Shared by the outage*.test.ts files: a QoS1 publisher that records each message's PUBACK latency, a TCP
// proxy that can refuse connections, RSS sampling, and a summary of latencies.
import { createServer, connect as tcpConnect, type Server, type Socket } from 'node:net';
import { readFileSync } from 'node:fs';
import type { MqttClient } from 'mqtt';
import { connectDevice, readCredentials } from '../../src/services/publish.js';

export interface Sent {
  seq: number;
  sentAt: number;
  /** ms from publish to PUBACK; undefined when it was never acknowledged. */
  latencyMs?: number;
  error?: string;
}

/**
 * Publishes `{"seq": n, "temperature": 20}` at `ratePerSecond` with QoS1 from one device until stop(); every
 * message is recorded with its PUBACK latency. A connection the broker closes is reopened (the message in
 * flight counts as not acknowledged).
 */
export async function startPublisher(opts: { projectDir: string; stateDir: string; device: string; topic: string; ratePerSecond: number; firstSeq?: number }) {
  const creds = readCredentials(`${opts.projectDir}/devices`, opts.device, opts.stateDir);
  const sent: Sent[] = [];
  const pending = new Set<Promise<void>>();
  let client: MqttClient | undefined;
  let stopped = false;
  let seq = opts.firstSeq ?? 1;
  const loop = (async () => {
    const started = performance.now();
    let i = 0;
    while (!stopped) {
      const due = started + (i * 1000) / opts.ratePerSecond;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      if (stopped) break;
      i++;
      if (!client || !client.connected) {
        client?.end(true);
        client = await connectDevice(creds);
        client.setMaxListeners(0);
      }
      const c = client;
      const rec: Sent = { seq: seq++, sentAt: Date.now() };
      sent.push(rec);
      const t0 = performance.now();
      const p = new Promise<void>((resolve) => {
        const onClose = () => { rec.error ??= 'connection closed'; resolve(); };
        c.once('close', onClose);
        c.publish(opts.topic, JSON.stringify({ seq: rec.seq, temperature: 20 }), { qos: 1 }, (err) => {
          c.off('close', onClose);
          if (err) rec.error = err.message;
          else rec.latencyMs = performance.now() - t0;
          resolve();
        });
      }).finally(() => pending.delete(p));
      pending.add(p);
    }
  })();
  return {
    sent,
    async stop(): Promise<Sent[]> {
      stopped = true;
      await loop;
      const deadline = Date.now() + 30_000;
      while (pending.size && Date.now() < deadline) await Promise.race([...pending, new Promise((r) => setTimeout(r, 100))]);
      client?.end(true);
      return sent;
    },
  };
}

export function percentile(values: number[], p: number): number {
  if (!values.length) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

export function latencySummary(values: number[]): string {
  return `n=${values.length} p50=${percentile(values, 50).toFixed(1)}ms p99=${percentile(values, 99).toFixed(1)}ms max=${Math.max(...values).toFixed(1)}ms`;
}

/**
 * A TCP proxy in front of a PostgreSQL server. refuse() closes the listener and cuts every connection, so a
 * client sees ECONNREFUSED, as from a server that is down; accept() listens on the same port again.
 */
export async function startProxy(target: { host: string; port: number }): Promise<{ port: number; refuse(): Promise<void>; accept(): Promise<void>; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  let server: Server;
  let port = 0;
  const listen = () =>
    new Promise<void>((resolve, reject) => {
      server = createServer((client) => {
        const upstream = tcpConnect(target.port, target.host);
        for (const s of [client, upstream]) {
          sockets.add(s);
          s.on('close', () => sockets.delete(s));
          s.on('error', () => { client.destroy(); upstream.destroy(); });
        }
        client.pipe(upstream);
        upstream.pipe(client);
      });
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        port = (server.address() as { port: number }).port;
        resolve();
      });
    });
  const stop = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      for (const s of sockets) s.destroy();
    });
  await listen();
  return { port, refuse: stop, accept: listen, close: stop };
}

/** Resident set size of a process in MB (Linux). */
export function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Rows per seq in iot_messages (payload->>'seq'), once at least `expected` distinct seqs are there. */
export async function seqCopies(databaseUrl: string, expected: number, timeoutMs: number): Promise<Map<number, number>> {
  const { default: pg } = await import('pg');
  const deadline = Date.now() + timeoutMs;
  let last = new Map<number, number>();
  for (;;) {
    const db = new pg.Client({ connectionString: databaseUrl });
    try {
      await db.connect();
      const r = await db.query<{ seq: string; copies: number }>("SELECT payload->>'seq' AS seq, count(*)::int AS copies FROM iot_messages WHERE payload ? 'seq' GROUP BY 1");
      last = new Map(r.rows.map((x) => [Number(x.seq), x.copies]));
      if (last.size >= expected) return last;
    } catch {
      // not reachable yet
    } finally {
      await db.end().catch(() => {});
    }
    if (Date.now() > deadline) return last;
    await sleep(500);
  }
}
