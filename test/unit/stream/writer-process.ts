// A second process for stream.test.ts: writes `count` records ("0", "1", ...) in small transactions.
import { openStore } from '../../../src/targets/local/store.js';
import { LocalStreams } from '../../../src/targets/local/stream.js';

const [dir, stream, countArg] = process.argv.slice(2);
const db = openStore(dir!);
const streams = new LocalStreams(db);
const count = Number(countArg);
for (let i = 0; i < count; i += 50) {
  streams.putRecords(
    stream!,
    Array.from({ length: Math.min(50, count - i) }, (_, j) => ({ data: Buffer.from(String(i + j)), partitionKey: `device-${(i + j) % 13}` })),
  );
  await new Promise((r) => setTimeout(r, 2));
}
db.close();
