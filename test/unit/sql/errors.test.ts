// Compile errors: code, 0-based offset, 1-based line/col, and the caret rendering of format().

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { compileExpression, compileRule, compileTemplate, SqlError, SqlRuntimeError, validateTopicFilter } from '../../../src/iot/sql/index.js';

function sqlError(fn: () => unknown): SqlError {
  try {
    fn();
  } catch (e) {
    if (e instanceof SqlError) return e;
    throw e;
  }
  throw new Error('expected a SqlError');
}

test('misspelled FROM: position of the offending word and a caret under it', () => {
  const e = sqlError(() => compileRule("SELECT * FORM 'a/b'"));
  assert.is(e.code, 'UNEXPECTED_TOKEN');
  assert.is(e.offset, 9);
  assert.is(e.line, 1);
  assert.is(e.col, 10);
  assert.is(e.format(), "UNEXPECTED_TOKEN: Unexpected 'FORM' (line 1, col 10)\n  SELECT * FORM 'a/b'\n           ^");
});

test('wrong arity on a later line points at the function name', () => {
  const e = sqlError(() => compileRule("SELECT temp,\n  md5(a, b) AS h\nFROM 'a/b'"));
  assert.is(e.code, 'WRONG_ARITY');
  assert.is(e.message, 'md5() takes 1 argument but was given 2');
  assert.equal([e.offset, e.line, e.col], [15, 2, 3]);
  assert.is(e.format(), 'WRONG_ARITY: md5() takes 1 argument but was given 2 (line 2, col 3)\n    md5(a, b) AS h\n    ^');
});

test('arity messages for ranges and variadic functions', () => {
  assert.is(sqlError(() => compileExpression("substring('a')")).message, 'substring() takes 2 to 3 arguments but was given 1');
  assert.is(sqlError(() => compileExpression('timestamp(1)')).message, 'timestamp() takes 0 arguments but was given 1');
});

test('unknown function suggests the nearest name', () => {
  const e = sqlError(() => compileRule("SELECT upperr(x) FROM 'a/b'"));
  assert.is(e.code, 'UNKNOWN_FUNCTION');
  assert.is(e.message, 'Unknown function upperr(); did you mean upper()?');
  assert.equal([e.line, e.col], [1, 8]);
  assert.is(sqlError(() => compileRule("SELECT frobnicate(x) FROM 'a/b'")).message, 'Unknown function frobnicate()');
});

test('invalid topic filter points inside the quoted filter', () => {
  const e = sqlError(() => compileRule("SELECT * FROM 'a/#/b'"));
  assert.is(e.code, 'INVALID_TOPIC_FILTER');
  assert.is(e.col, 18);
  assert.is(e.format().split('\n')[2], '                   ^');
});

test('unterminated string points at its opening quote', () => {
  const e = sqlError(() => compileRule("SELECT * FROM 'a/b"));
  assert.is(e.code, 'UNTERMINATED_STRING');
  assert.is(e.offset, 14);
  assert.is(e.message, "String starting here has no closing '");
});

test('end of input is reported where the input ends', () => {
  const e = sqlError(() => compileExpression('a +'));
  assert.is(e.code, 'UNEXPECTED_END');
  assert.is(e.offset, 3);
  assert.is(e.format(), 'UNEXPECTED_END: Expected an expression, found end of input (line 1, col 4)\n  a +\n     ^');
});

test('tabs are kept in the caret padding', () => {
  const e = sqlError(() => compileRule("SELECT\tx,\n\tfoo() FROM 'a'"));
  assert.is(e.format(), "UNKNOWN_FUNCTION: Unknown function foo() (line 2, col 2)\n  \tfoo() FROM 'a'\n  \t^");
});

test('CRLF line endings count as one line break', () => {
  const e = sqlError(() => compileRule("SELECT a\r\nFROM 'a/b'\r\nWHERE nope("));
  assert.equal([e.code, e.line, e.col], ["UNKNOWN_FUNCTION", 3, 7]);
});

test('searched CASE explains the supported form', () => {
  const e = sqlError(() => compileExpression('CASE WHEN a > 1 THEN 1 END'));
  assert.is(e.code, 'UNSUPPORTED_SYNTAX');
  assert.match(e.message, 'CASE true WHEN <condition>');
});

test('comments are refused rather than parsed as arithmetic', () => {
  const e = sqlError(() => compileRule("SELECT * FROM 'a/b' WHERE t > 1 -- hot"));
  assert.is(e.code, 'UNSUPPORTED_SYNTAX');
  assert.is(e.col, 33);
});

test('template errors are positioned in the template text', () => {
  const unclosed = sqlError(() => compileTemplate('raw/${topic(2)/x'));
  assert.is(unclosed.code, 'UNTERMINATED_TEMPLATE');
  assert.is(unclosed.offset, 4);
  const bad = sqlError(() => compileTemplate('raw/${topic(2}/x'));
  assert.is(bad.code, 'UNEXPECTED_TOKEN');
  assert.is(bad.offset, 13);
  assert.is(sqlError(() => compileTemplate('a/${}')).code, 'EMPTY_TEMPLATE_EXPRESSION');
  assert.is(sqlError(() => compileTemplate('a/${nosuch()}')).code, 'UNKNOWN_FUNCTION');
});

test('validateTopicFilter reports the offending character', () => {
  const e = sqlError(() => validateTopicFilter('a/b+'));
  assert.is(e.code, 'INVALID_TOPIC_FILTER');
  assert.is(e.offset, 3);
  assert.is(e.format(), "INVALID_TOPIC_FILTER: Invalid topic filter 'a/b+': '+' must occupy a whole level (line 1, col 4)\n  a/b+\n     ^");
});

test('SqlError and SqlRuntimeError are Errors with names', () => {
  const e = sqlError(() => compileRule('SELECT'));
  assert.ok(e instanceof Error);
  assert.is(e.name, 'SqlError');
  assert.is(new SqlRuntimeError('NOT_SUPPORTED_LOCALLY', 'x').name, 'SqlRuntimeError');
});

test('functions that need another AWS service compile, then fail clearly at evaluation', () => {
  const rule = compileRule(`SELECT *, get_dynamodb("InServiceDevices", "deviceId", id, "arn:aws:iam::12345678910:role/getdynamo").location AS location FROM 'd/+'`);
  assert.equal(rule.unsupportedLocally, ['get_dynamodb']);
  try {
    rule.evaluate({ topic: 'd/1', payload: { id: 'x' } });
    assert.unreachable('should have thrown');
  } catch (e) {
    assert.ok(e instanceof SqlRuntimeError);
    assert.is(e.code, 'NOT_SUPPORTED_LOCALLY');
    assert.is(e.functionName, 'get_dynamodb');
    assert.is(e.message, 'get_dynamodb() needs DynamoDB and is not supported on the local target; run this rule on the aws target');
  }
  // A rule whose topic filter does not match never reaches the call.
  assert.is(rule.evaluate({ topic: 'other', payload: {} }), undefined);
});

test.run();
