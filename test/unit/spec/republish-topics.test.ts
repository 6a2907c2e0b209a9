/**
 * `spec validate` holds a republish action's topic template to AWS IoT's topic limits: wildcards, NUL, a reserved
 * `$` prefix other than `$aws/`, or literal text already over 256 bytes or 7 slashes is an error at file:line:col.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { specProblems } from '../../helpers/project.js';

const problemsOf = specProblems;

const spec = (topic: string, where: 'actions' | 'errorAction' = 'actions') => [
  'project: demo',
  'rules:',
  '  - name: echo',
  "    sql: SELECT * FROM 'dt/#'",
  ...(where === 'actions' ? ['    actions:', `      - republish: { topic: ${JSON.stringify(topic)} }`] : ["    actions: [{ republish: { topic: 'ok' } }]", '    errorAction:', `      republish: { topic: ${JSON.stringify(topic)} }`]),
  '',
].join('\n');

test('valid republish topics pass, templates and $aws/ included', () => {
  assert.equal(problemsOf(spec('cmd/${topic(3)}/echo')), []);
  assert.equal(problemsOf(spec('loop/${topic()}')), []);
  assert.equal(problemsOf(spec('$aws/things/${topic(3)}/shadow/update')), []);
});

test('a wildcard in the literal text is an error at its line and column', () => {
  const [p, ...rest] = problemsOf(spec('cmd/+/${topic(3)}'));
  assert.equal(rest, []);
  assert.is(p!.path, 'rules[0].actions[0].republish.topic');
  assert.match(p!.message, /wildcard '\+'/);
  assert.is(p!.line, 6);
  // `      - republish: { topic: "` is 29 characters, the + is the 5th of the value.
  assert.is(p!.col, 29 + 5);
});

test('$SYS/ and other reserved prefixes, NUL, and literal text over the limits are errors; errorAction too', () => {
  assert.match(problemsOf(spec('$SYS/broker/${topic()}'))[0]!.message, /reserved/);
  assert.match(problemsOf(spec('a\u0000b'))[0]!.message, /NUL/);
  assert.match(problemsOf(spec('a/b/c/d/e/f/g/h/${topic()}'))[0]!.message, /forward slashes/);
  assert.match(problemsOf(spec(`${'x'.repeat(257)}`))[0]!.message, /257 bytes/);
  const [e] = problemsOf(spec('errors/#', 'errorAction'));
  assert.is(e!.path, 'rules[0].errorAction.republish.topic');
});

test.run();
