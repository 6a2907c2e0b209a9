import { createServer } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { maintenanceRun } from '../../../src/targets/aws/database-ops.js';
import { reachable } from '../../../src/db/via.js';

/** The maintenance function's log line as `status` reads it, and the reachability probe of `--via auto`. */

const ID = '3f1c9a2e-8d4b-4c1e-9a7f-0b2d6e5c4a11';

test('a run line (Node.js text format) becomes its summary', () => {
  const line = `2026-12-07T03:00:01.000Z\t${ID}\tINFO\t${JSON.stringify({ message: 'iotctl maintenance', level: 'info', action: 'maintenance', dryRun: false, dropped: [{ partition: 'iot_messages_p20261205' }], rowsDeleted: 12, clustered: [], created: ['2026-12-09'], ms: 80, dbMs: 61 })}`;
  const run = maintenanceRun(line, Date.parse('2026-12-07T03:00:01Z'))!;
  assert.equal(run, { at: '2026-12-07T03:00:01.000Z', ok: true, action: 'maintenance', dryRun: false, summary: 'dropped 1 partition(s), deleted 12 row(s), clustered 0, created 1 partition(s) in 80 ms (61 ms in PostgreSQL)' });
});

test('an error line is a failed run with its error; other lines are not runs', () => {
  const line = `2026-12-07T03:00:01.000Z\t${ID}\tERROR\t${JSON.stringify({ message: 'iotctl maintenance', level: 'error', action: 'maintenance', error: 'connect ETIMEDOUT 10.0.1.5:5432' })}`;
  const run = maintenanceRun(line, 0)!;
  assert.is(run.ok, false);
  assert.is(run.summary, 'failed: connect ETIMEDOUT 10.0.1.5:5432');
  assert.is(maintenanceRun(`START RequestId: ${ID} Version: $LATEST`, 0), undefined);
  assert.is(maintenanceRun(`2026-12-07T03:00:01.000Z\t${ID}\tINFO\t{"message":"something else"}`, 0), undefined);
});

test('reachable: a listening port answers, a closed one does not', async () => {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as { port: number };
  assert.is(await reachable({ url: `postgres://u@127.0.0.1:${port}/db`, display: '', source: '' }), true);
  assert.is(await reachable({ url: undefined, display: '', source: '', clientConfig: { host: '127.0.0.1', port } }), true);
  server.close();
  assert.is(await reachable({ url: 'postgres://u@127.0.0.1:1/db', display: '', source: '' }), false);
});

test.run();
