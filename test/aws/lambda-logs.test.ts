import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { decodeLogTail, parseLogLine, parseReport } from '../../src/targets/aws/lambda-logs.js';

const ID = '6f1b2c3d-1111-4222-8333-444455556666';

test('platform lines, the Node.js text format and the JSON log format', () => {
  assert.equal(parseLogLine(`START RequestId: ${ID} Version: $LATEST\n`), { requestId: ID, level: 'START', message: `START RequestId: ${ID} Version: $LATEST` });
  assert.equal(parseLogLine(`2024-05-01T10:00:00.000Z\t${ID}\tWARN\tslow batch\n`), { requestId: ID, level: 'WARN', message: 'slow batch' });
  assert.equal(parseLogLine(`2024-05-01T10:00:00.000Z\tundefined\tINFO\tloaded at init`), { requestId: null, level: 'INFO', message: 'loaded at init' });
  assert.equal(parseLogLine(`2024-05-01T10:00:00.000Z\t${ID}\tERROR\tline 1\nline 2`), { requestId: ID, level: 'ERROR', message: 'line 1\nline 2' });
  assert.equal(parseLogLine(JSON.stringify({ timestamp: '2024-05-01T10:00:00Z', level: 'debug', requestId: ID, message: 'batch written' })), { requestId: ID, level: 'DEBUG', message: 'batch written' });
  assert.equal(parseLogLine('INIT_START Runtime Version: nodejs:20.v30'), { requestId: null, level: 'INFO', message: 'INIT_START Runtime Version: nodejs:20.v30' });
  assert.equal(parseLogLine('{not json'), { requestId: null, level: 'INFO', message: '{not json' });
});

test('REPORT figures, with and without Init Duration', () => {
  assert.equal(parseReport(`REPORT RequestId: ${ID}\tDuration: 2.50 ms\tBilled Duration: 3 ms\tMemory Size: 128 MB\tMax Memory Used: 64 MB\tInit Duration: 99.10 ms`), {
    requestId: ID,
    durationMs: 2.5,
    billedDurationMs: 3,
    initDurationMs: 99.1,
    maxMemoryUsedMb: 64,
  });
  assert.is(parseReport(`REPORT RequestId: ${ID}\tDuration: 2.50 ms\tBilled Duration: 3 ms`)!.initDurationMs, undefined);
  assert.is(parseReport(`END RequestId: ${ID}`), undefined);
});

test('a short log tail is kept whole', () => {
  const text = `START RequestId: ${ID} Version: $LATEST\nhello\nEND RequestId: ${ID}\n`;
  assert.equal(decodeLogTail(Buffer.from(text).toString('base64')), [`START RequestId: ${ID} Version: $LATEST`, 'hello', `END RequestId: ${ID}`]);
  assert.equal(decodeLogTail(undefined), []);
});

test.run();
