// Fuzzed payloads (issue 11): 10,000 seeded, generated payloads from one device (not JSON, binary, 0 bytes,
// exactly 128 KB and one byte over, deep nesting, huge numbers, duplicate keys, invalid UTF-8, type flips of a
// field) while another device sends good telemetry. Every good message reaches PostgreSQL and the lake; every
// fuzzed one is refused at the broker with a counted reason, or is in `rules errors` with a reason, or was a
// valid JSON object and is in iot_messages (or iot_ingest_errors with a reason) once; the daemon stays up and
// its RSS stays bounded.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chmodSync } from 'node:fs';
import pg from 'pg';
import { cli, makeProject, waitFor, type Project } from '../helpers/project.js';
import { initSpec } from '../../src/spec/init-template.js';
import { freePort } from '../../src/targets/local/postgres.js';
import { readDaemonInfo } from '../../src/targets/local/daemon-info.js';
import { resolveDatabaseUrl } from '../../src/db/connection.js';
import { MAX_PAYLOAD_BYTES } from '../../src/targets/local/broker.js';
import { connectDevice, readCredentials } from '../../src/services/publish.js';
import { rssMb, sleep, startPublisher } from './outage-support.js';

const FUZZ = 10_000;
const SEED = 0x1107;
const GOOD_RATE = 50;

type Kind = 'notJson' | 'binary' | 'empty' | 'exact128k' | 'over128k' | 'deepNesting' | 'hugeNumber' | 'duplicateKeys' | 'invalidUtf8' | 'typeFlip';

/** mulberry32: a small seeded generator, so every run sends the same 10,000 payloads. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Kinds by weight (per 1000); the two 128 KB kinds are rare, as each costs a connection or 128 KB. */
const WEIGHTS: [Kind, number][] = [
  ['notJson', 140], ['binary', 140], ['empty', 40], ['exact128k', 4], ['over128k', 3],
  ['deepNesting', 60], ['hugeNumber', 150], ['duplicateKeys', 150], ['invalidUtf8', 150], ['typeFlip', 163],
];

export function generate(n: number, seed: number): { kind: Kind; i: number; payload: Buffer }[] {
  const rnd = prng(seed);
  const int = (lo: number, hi: number) => lo + Math.floor(rnd() * (hi - lo + 1));
  const pick = <T>(xs: readonly T[]) => xs[int(0, xs.length - 1)]!;
  const total = WEIGHTS.reduce((a, [, w]) => a + w, 0);
  const out: { kind: Kind; i: number; payload: Buffer }[] = [];
  for (let i = 0; i < n; i++) {
    let r = rnd() * total;
    const kind = WEIGHTS.find(([, w]) => (r -= w) < 0)![0];
    const json = (s: string) => Buffer.from(s, 'utf8');
    let payload: Buffer;
    switch (kind) {
      case 'notJson':
        payload = json(pick([`temperature=${int(0, 40)};i=${i}`, `{"i": ${i}, "temperature": `, `<reading i="${i}"/>`, `[${i}, 1, 2`, `{'i': ${i}}`, `i ${i} NaN`]));
        break;
      case 'binary': {
        // A byte >= 0x80 first (never a JSON document by accident), the index (unique), then random bytes.
        payload = Buffer.alloc(5 + int(0, 59));
        for (let k = 0; k < payload.length; k++) payload[k] = int(0, 255);
        payload[0] = int(0x80, 0xff);
        payload.writeUInt32BE(i, 1);
        break;
      }
      case 'empty':
        payload = Buffer.alloc(0);
        break;
      case 'exact128k':
      case 'over128k': {
        const head = `{"i":${i},"temperature":20,"pad":"`;
        const size = MAX_PAYLOAD_BYTES + (kind === 'over128k' ? 1 : 0);
        payload = json(head + 'x'.repeat(size - head.length - 2) + '"}');
        break;
      }
      case 'deepNesting': {
        const depth = pick([64, 1_000, 10_000, 60_000]); // 60,000 levels: 120 KB, under the limit
        payload = json(`{"i":${i},"temperature":20,"deep":${'['.repeat(depth)}${']'.repeat(depth)}}`);
        break;
      }
      case 'hugeNumber':
        payload = json(`{"i":${i},"temperature":${pick(['1e308', '1e400', '-1e400', '123456789012345678901234567890123456789', '0.' + '0'.repeat(400) + '1', '-0', '9007199254740993', '1' + '0'.repeat(1000)])}}`);
        break;
      case 'duplicateKeys':
        payload = json(pick([`{"i":${i},"temperature":20,"temperature":"hot"}`, `{"i":${i},"temperature":20,"device_id":"a","device_id":"b"}`, `{"i":${i},"temperature":20,"ts":1,"ts":"yesterday"}`]));
        break;
      case 'invalidUtf8':
        payload = Buffer.concat([json(`{"i":${i},"temperature":20,"note":"`), Buffer.from(pick([[0xff], [0xc3, 0x28], [0xed, 0xa0, 0x80], [0xf0, 0x28, 0x8c, 0x28], [0x80]])), json('"}')]);
        break;
      case 'typeFlip':
        payload = json(`{"i":${i},"temperature":${pick(['"21.5"', 'true', 'null', '{"value":21.5}', '[21.5]', '""', '"NaN"'])}}`);
        break;
    }
    out.push({ kind, i, payload });
  }
  return out;
}

let project: Project;
const run = (...args: string[]) => cli(args, { cwd: project.dir, env: { DATABASE_URL: '' }, timeoutMs: 120_000 });

test('the generator is deterministic', () => {
  const a = generate(200, SEED);
  const b = generate(200, SEED);
  assert.equal(a.map((x) => x.payload.toString('base64')), b.map((x) => x.payload.toString('base64')));
});

test('10,000 fuzzed payloads beside good traffic: good data arrives, every bad one is accounted for, the daemon stays up', async () => {
  project = makeProject(initSpec('fuzz').replace('mqttPort: 8883', `mqttPort: ${await freePort()}`));
  chmodSync(project.dir, 0o755);
  const messages = generate(FUZZ, SEED);
  const byKind = new Map<Kind, number>();
  for (const m of messages) byKind.set(m.kind, (byKind.get(m.kind) ?? 0) + 1);
  let sampler: NodeJS.Timeout | undefined;
  let good: Awaited<ReturnType<typeof startPublisher>> | undefined;
  try {
    assert.is((await run('local', 'up', '--detach')).code, 0);
    assert.is((await run('apply', '--yes')).code, 0);
    for (const d of ['fuzzer', 'sensor-good']) assert.is((await run('device', 'register', d)).code, 0);
    const daemonPid = readDaemonInfo(project.stateDir)!.pid;
    const rss: number[] = [rssMb(daemonPid)];
    sampler = setInterval(() => { try { rss.push(rssMb(daemonPid)); } catch { rss.push(NaN); } }, 250);

    good = await startPublisher({ projectDir: project.dir, stateDir: project.stateDir, device: 'sensor-good', topic: 'dt/fuzz/sensor-good/telemetry', ratePerSecond: GOOD_RATE });
    const topic = 'dt/fuzz/fuzzer/telemetry';
    const creds = readCredentials(`${project.dir}/devices`, 'fuzzer', project.stateDir);
    // Over 128 KB: AWS IoT Core refuses it and closes the connection, so each goes on a connection of its own.
    const refusedByClient: number[] = [];
    const acked = new Set<number>();
    const started = Date.now();
    let client = await connectDevice(creds);
    client.setMaxListeners(0);
    const normal = messages.filter((m) => m.kind !== 'over128k');
    // mqtt.js leaves publishes pending when the broker closes the connection: a close fails the window.
    const closed = new Promise<never>((_, reject) => client.once('close', () => reject(new Error('the broker closed the connection of the fuzzing device'))));
    closed.catch(() => {});
    for (let k = 0; k < normal.length; k += 250) {
      await Promise.race([closed, Promise.all(normal.slice(k, k + 250).map((m) => client.publishAsync(topic, m.payload, { qos: 1 }).then(() => acked.add(m.i))))]);
    }
    client.end(true);
    for (const m of messages.filter((x) => x.kind === 'over128k')) {
      client = await connectDevice(creds);
      const closed = new Promise<void>((r) => client.once('close', () => r()));
      const outcome = await Promise.race([client.publishAsync(topic, m.payload, { qos: 1 }).then(() => 'acked'), closed.then(() => 'closed')]);
      if (outcome === 'acked') acked.add(m.i);
      else refusedByClient.push(m.i);
      client.end(true);
    }
    const publishSeconds = (Date.now() - started) / 1000;
    await sleep(1_000);
    const goodSent = await good.stop();
    const goodAcked = goodSent.filter((s) => s.latencyMs !== undefined);
    assert.is(goodAcked.length, goodSent.length, 'every good message acknowledged');

    // The broker: the oversized ones refused with their reason, counted.
    // status.json is rewritten every second: wait for it to show the refusals (then check the exact count).
    const status = await waitFor(async () => {
      const s = JSON.parse((await run('local', 'status', '--json')).stdout);
      return s.publishesDenied?.total >= byKind.get('over128k')! ? s : undefined;
    }, 15_000, 'the refused publishes in local status').catch(async () => JSON.parse((await run('local', 'status', '--json')).stdout));
    assert.ok(status.running, 'the daemon is up');
    assert.is(refusedByClient.length, byKind.get('over128k'));
    assert.is(status.publishesDenied.byReason.payloadTooLarge, byKind.get('over128k'), JSON.stringify(status.publishesDenied));
    assert.is(acked.size, FUZZ - byKind.get('over128k')!, 'every other fuzzed payload was acknowledged (made durable)');

    // Good data: PostgreSQL and the lake.
    const phase = Date.now();
    const db = new pg.Client({ connectionString: resolveDatabaseUrl({ stateDir: project.stateDir, env: {} }).url! });
    await db.connect();
    try {
      await waitFor(async () => {
        const r = await db.query<{ n: number }>("SELECT count(DISTINCT payload->>'seq')::int AS n FROM iot_messages WHERE device_id = 'sensor-good'");
        return r.rows[0]!.n >= goodAcked.length;
      }, 120_000, 'the good messages in iot_messages');
      const lake = await waitFor(async () => {
        const r = await run('athena', 'run', "SELECT count(*)::int AS n FROM telemetry_store WHERE device_id = 'sensor-good'", '--format', 'json');
        const n = r.code === 0 ? (JSON.parse(r.stdout) as { n: number }[])[0]!.n : 0;
        return n >= goodAcked.length ? n : undefined;
      }, 120_000, 'the good messages in the lake');
      assert.is(lake, goodAcked.length, 'good messages in the lake exactly once');
      const goodArrived = (Date.now() - phase) / 1000;

      // Every acknowledged fuzzed payload: a rules error with a reason, a row, or a dead letter with a reason.
      await waitFor(async () => JSON.parse((await run('local', 'status', '--json')).stdout).rules?.lag === 0, 60_000, 'the rules runtime to catch up');
      const errors = JSON.parse((await run('rules', 'errors', '--limit', '100000', '--json')).stdout) as { ruleName: string; error: { base64OriginalPayload: string; clientId: string; failures: { errorMessage: string }[] } }[];
      const errorPayloads = new Map<string, Set<string>>();
      for (const e of errors) {
        if (e.error.clientId !== 'fuzzer') continue;
        assert.ok(e.error.failures.length && e.error.failures.every((f) => f.errorMessage), `a reason for ${JSON.stringify(e.error).slice(0, 200)}`);
        const rules = errorPayloads.get(e.error.base64OriginalPayload) ?? new Set();
        errorPayloads.set(e.error.base64OriginalPayload, rules.add(e.ruleName));
      }
      const settle = async () => {
        const rows = await db.query<{ i: string; copies: number }>("SELECT payload->>'i' AS i, count(*)::int AS copies FROM iot_messages WHERE device_id = 'fuzzer' GROUP BY 1");
        const dead = await db.query<{ raw: Buffer; reason: string }>('SELECT raw_data AS raw, reason FROM iot_ingest_errors');
        return { rows: new Map(rows.rows.map((r) => [Number(r.i), r.copies])), dead: new Map(dead.rows.map((d) => [d.raw.toString('base64'), d.reason])) };
      };
      const stored = await waitFor(async () => {
        const s = await settle();
        const pending = messages.filter((m) => acked.has(m.i) && !errorPayloads.has(m.payload.toString('base64')) && !s.rows.has(m.i) && !s.dead.has(m.payload.toString('base64')));
        return pending.length === 0 ? s : undefined;
      }, 120_000, 'every acknowledged fuzzed payload to be in rules errors, iot_messages or iot_ingest_errors').catch(async (e) => {
        const s = await settle();
        const pending = messages.filter((m) => acked.has(m.i) && !errorPayloads.has(m.payload.toString('base64')) && !s.rows.has(m.i) && !s.dead.has(m.payload.toString('base64')));
        throw new Error(`${(e as Error).message}: ${pending.length} unaccounted, e.g. ${pending.slice(0, 5).map((m) => `${m.kind}#${m.i}`).join(', ')}`);
      });
      const table = new Map<string, number>();
      for (const m of messages) {
        const b64 = m.payload.toString('base64');
        const where = !acked.has(m.i) ? 'refused:payloadTooLarge' : errorPayloads.has(b64) ? 'rulesErrors' : stored.rows.has(m.i) ? 'iot_messages' : `iot_ingest_errors:${stored.dead.get(b64)!.split(':')[0]}`;
        const key = `${m.kind} -> ${where}`;
        table.set(key, (table.get(key) ?? 0) + 1);
        if (errorPayloads.has(b64)) assert.equal([...errorPayloads.get(b64)!].sort(), ['telemetry_to_lake', 'telemetry_to_stream'], `${m.kind}#${m.i}: both rules report it`);
      }
      assert.equal([...stored.rows].filter(([, n]) => n !== 1), [], 'no fuzzed row twice');
      for (const kind of ['notJson', 'binary'] as const) assert.is(table.get(`${kind} -> rulesErrors`), byKind.get(kind), `${kind}: all in rules errors`);
      for (const kind of ['exact128k', 'hugeNumber', 'duplicateKeys', 'typeFlip'] as const) assert.is(table.get(`${kind} -> iot_messages`), byKind.get(kind), `${kind}: all stored`);

      const after = JSON.parse((await run('local', 'status', '--json')).stdout);
      assert.ok(after.running && after.pid === daemonPid, 'the same daemon is still up');
      clearInterval(sampler);
      const peak = Math.max(...rss.filter((x) => !Number.isNaN(x)));
      console.log(`fuzz: ${FUZZ} payloads published in ${publishSeconds.toFixed(1)} s; ${goodAcked.length} good, in PostgreSQL and the lake ${goodArrived.toFixed(1)} s after the last publish; accounted for after ${((Date.now() - phase) / 1000).toFixed(1)} s; daemon RSS start ${rss[0]!.toFixed(0)} MB, peak ${peak.toFixed(0)} MB, end ${rss[rss.length - 1]!.toFixed(0)} MB`);
      console.log([...table].sort().map(([k, n]) => `  ${k}: ${n}`).join('\n'));
      assert.ok(peak < 600, `daemon RSS peak ${peak.toFixed(0)} MB stays under 600 MB`);
    } finally {
      await db.end();
    }
  } finally {
    clearInterval(sampler);
    await good?.stop();
    await run('local', 'down');
    project.cleanup();
  }
});

test.run();
