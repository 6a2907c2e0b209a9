import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { toCsv } from '../../../src/ui/output.js';
import { streamRows, writeRowsToFile } from '../../../src/ui/stream-rows.js';

async function* from<T>(rows: T[]): AsyncGenerator<T> {
  for (const r of rows) yield r;
}

const columns = ['device_id', 'note', 'n', 'at', 'missing'];
const rows: unknown[][] = [
  ['sensor-1', 'plain', 1, new Date(Date.UTC(2030, 0, 31)), null],
  ['sensor-2', 'has, comma and "quotes"\nand a newline', 2.5, '2030-01-31 10:00:00', undefined],
];

test('csv: the same text toCsv makes for the whole result, written as a stream', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'iotctl-rows-'));
  try {
    const file = join(dir, 'out.csv');
    const result = await writeRowsToFile(file, 'csv', columns, from(rows));
    const expected = toCsv(rows, columns.map((header, i) => ({ header, get: (r: unknown[]) => r[i] })));
    assert.is(readFileSync(file, 'utf8'), expected);
    assert.equal(result, { rows: 2, bytes: Buffer.byteLength(expected) });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('json: one array of objects by column name, also when empty', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'iotctl-rows-'));
  try {
    const file = join(dir, 'out.json');
    await writeRowsToFile(file, 'json', columns, from(rows));
    assert.equal(JSON.parse(readFileSync(file, 'utf8')), [
      { device_id: 'sensor-1', note: 'plain', n: 1, at: '2030-01-31T00:00:00.000Z', missing: null },
      { device_id: 'sensor-2', note: rows[1]![1], n: 2.5, at: '2030-01-31 10:00:00', missing: null },
    ]);
    // Replacing the file is explicit (--force).
    await writeRowsToFile(file, 'json', columns, from([]), { force: true });
    assert.equal(JSON.parse(readFileSync(file, 'utf8')), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('backpressure: rows are pulled only as fast as a slow destination drains', async () => {
  let produced = 0;
  let written = 0;
  let maxAhead = 0;
  const line = 'x'.repeat(100);
  async function* many() {
    for (let i = 0; i < 20_000; i++) {
      produced++;
      maxAhead = Math.max(maxAhead, produced - written);
      yield [line, i];
    }
  }
  const slow = new Writable({
    highWaterMark: 16 * 1024,
    write(chunk: Buffer, _enc, done) {
      written += chunk.toString().split('\n').length - 1;
      setTimeout(done, 1);
    },
  });
  const n = await streamRows(slow, 'csv', ['line', 'i'], many());
  assert.is(n, 20_000);
  // A chunk is ~64 KB (about 600 rows of ~105 bytes); without backpressure all 20,000 rows would be queued.
  assert.ok(maxAhead < 2_000, `rows produced ahead of the writes: ${maxAhead}`);
});

test('a destination that fails stops the stream with its error', async () => {
  const broken = new Writable({ highWaterMark: 1, write: (_c, _e, done) => done(new Error('disk full')) });
  broken.on('error', () => undefined);
  const e = await streamRows(broken, 'csv', ['a'], from(Array.from({ length: 100_000 }, (_, i) => [i]))).then(() => undefined, (err: unknown) => err);
  assert.instance(e, Error);
  assert.match((e as Error).message, 'disk full');
});

test.run();
