import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CsvParser, csvRecordBatches } from '../../../src/targets/aws/csv-stream.js';

// Athena's result CSV: every value quoted, "" for a quote, newlines inside quotes, NULL as an empty unquoted field.
const TEXT = '"a","b","c"\n"x,1","say ""hi""",\n"multi\nline","",""\r\n"é€😀","2",\n';
const EXPECTED = [
  ['a', 'b', 'c'],
  ['x,1', 'say "hi"', null],
  ['multi\nline', '', ''],
  ['é€😀', '2', null],
];

test('quotes, escaped quotes, separators and newlines inside values; NULL apart from the empty string', () => {
  const p = new CsvParser();
  assert.equal([...p.push(TEXT), ...p.end()], EXPECTED);
});

test('the same records whatever the chunk boundaries (every split point, bytes split inside a UTF-8 character)', async () => {
  const bytes = Buffer.from(TEXT);
  for (let i = 1; i < bytes.length; i++) {
    async function* chunks() {
      yield bytes.subarray(0, i);
      yield bytes.subarray(i);
    }
    const out = [];
    for await (const batch of csvRecordBatches(chunks())) out.push(...batch);
    assert.equal(out, EXPECTED, `split at ${i}`);
  }
});

test('a last record without a newline is kept; a truncated quoted value is an error', () => {
  const p = new CsvParser();
  assert.equal([...p.push('"a","b"\n"c",'), ...p.end()], [['a', 'b'], ['c', null]]);
  const q = new CsvParser();
  q.push('"a","unterminated');
  assert.throws(() => q.end(), /ends inside a quoted field/);
});

test.run();
