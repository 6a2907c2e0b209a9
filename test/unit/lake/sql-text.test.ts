import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { lakeQueryProblems, sqlTokens } from '../../../src/targets/local/lake/sql-text.js';

const problems = (sql: string, opts?: { expression?: boolean }) => lakeQueryProblems(sql, opts).map((p) => `${p.offset} ${p.message.split(';')[0]}`);

test('queries over tables pass, with or without a trailing semicolon or comment', () => {
  for (const sql of [
    'SELECT * FROM ds',
    'select 1;',
    'select 1; -- done',
    'WITH x AS (SELECT 1) SELECT * FROM x',
    '(SELECT 1) UNION (SELECT 2)',
    'FROM ds SELECT device',
    'VALUES (1)',
    // Names that are also statements or file functions, but used as columns or inside text.
    'SELECT load, copy, "set" FROM ds',
    `SELECT 'read_text(', "glob"(1), $$ read_csv( $$, E'it\\'s read_blob(' FROM ds -- read_parquet(\n`,
    '/* COPY (SELECT 1) TO x; */ SELECT 1',
  ])
    assert.equal(problems(sql), [], sql);
});

test('file functions are refused at their offset, in any case and spacing', () => {
  assert.equal(problems(`SELECT content FROM read_text('/etc/shadow')`), ['20 reads files with read_text()']);
  assert.equal(problems(`select * from READ_CSV_AUTO ('x')`), ['14 reads files with READ_CSV_AUTO()']);
  assert.equal(problems(`SELECT * FROM glob('/etc/*') JOIN parquet_scan('x') ON true`), ['14 reads files with glob()', '34 reads files with parquet_scan()']);
  assert.equal(problems(`SELECT * FROM query('COPY x TO y')`), ['14 reads files with query()']);
});

test('statements other than one query are refused', () => {
  assert.equal(problems(`COPY (SELECT 1) TO '/tmp/x'`), ['0 starts with COPY, not a query']);
  for (const word of ['ATTACH', 'INSTALL', 'LOAD', 'PRAGMA', 'SET', 'RESET', 'EXPORT', 'IMPORT', 'CALL', 'CREATE']) assert.equal(problems(`  ${word} something`), [`2 starts with ${word}, not a query`], word);
  assert.equal(problems(`SELECT 1; ATTACH 'x'`), ['8 has more than one statement', '10 starts with ATTACH, not a query']);
});

test('an expression (deltaTime.timeExpression) may not read files or end its statement', () => {
  assert.equal(problems('from_unixtime(ts)', { expression: true }), []);
  assert.equal(problems(`(SELECT max(content) FROM read_text('/x'))`, { expression: true }), ['26 reads files with read_text()']);
  assert.equal(problems(`1); COPY x TO 'y'; SELECT (1`, { expression: true }), ['2 has more than one statement']);
});

test('tokens skip literals, quoted identifiers and comments', () => {
  assert.equal(
    [...sqlTokens(`SELECT "a;b", 'c;d', x -- e;\n/* f; */ FROM t;`)].map((t) => t.text),
    ['SELECT', ',', ',', 'x', 'FROM', 't', ';'],
  );
  assert.equal([...sqlTokens(`SELECT $tag$ a; $ b $tag$ ; z`)].map((t) => t.text), ['SELECT', ';', 'z']);
});

test.run();
