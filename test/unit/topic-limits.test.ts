/**
 * AWS IoT Core's topic limits (message broker quotas, https://docs.aws.amazon.com/general/latest/gr/iot-core.html):
 * a topic is at most 256 bytes of UTF-8 and has at most 7 forward slashes; the Basic Ingest prefix
 * `$aws/rules/<rule>/` does not count toward the slashes; a PUBLISH topic has no wildcards.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { MAX_TOPIC_BYTES, MAX_TOPIC_SLASHES, publishTopicProblem, sizeProblem, topicTemplateProblems } from '../../src/iot/topics.js';

test('topics within the limits pass, at the limits exactly too', () => {
  assert.is(publishTopicProblem('dt/demo/sensor-1/telemetry'), undefined);
  assert.is(publishTopicProblem('a/b/c/d/e/f/g/h'), undefined); // 7 slashes
  assert.is(publishTopicProblem('x'.repeat(MAX_TOPIC_BYTES)), undefined);
  assert.is(publishTopicProblem('$aws/things/t/shadow/update'), undefined);
});

test('257 bytes of UTF-8 are too long, counted in bytes, not characters', () => {
  assert.is(publishTopicProblem('x'.repeat(257))?.reason, 'topicTooLong');
  // 128 two-byte characters are 256 bytes; one more is over.
  assert.is(publishTopicProblem('é'.repeat(128)), undefined);
  assert.is(publishTopicProblem('é'.repeat(129))?.reason, 'topicTooLong');
});

test('an eighth slash is one too many, reported at its offset', () => {
  const p = publishTopicProblem('a/b/c/d/e/f/g/h/i');
  assert.is(p?.reason, 'tooManyLevels');
  assert.is(p?.index, 15);
  assert.is(MAX_TOPIC_SLASHES, 7);
});

test('the Basic Ingest prefix does not count toward the slashes', () => {
  assert.is(publishTopicProblem('$aws/rules/myrule/a/b/c/d/e/f/g/h'), undefined);
  assert.is(publishTopicProblem('$aws/rules/myrule/a/b/c/d/e/f/g/h/i')?.reason, 'tooManyLevels');
});

test('wildcards, NUL and the empty topic are refused in a PUBLISH topic', () => {
  assert.equal(publishTopicProblem('a/+/b'), { reason: 'wildcardInTopic', message: "the topic contains the wildcard '+', which only topic filters may use", index: 2 });
  assert.is(publishTopicProblem('a/#')?.reason, 'wildcardInTopic');
  assert.is(publishTopicProblem('a\u0000b')?.index, 1);
  assert.is(publishTopicProblem('a\u0000b')?.reason, 'nulInTopic');
  assert.is(publishTopicProblem('')?.reason, 'emptyTopic');
});

test('topic filters share the size limits (wildcards allowed)', () => {
  assert.is(sizeProblem('a/+/#'), undefined);
  assert.is(sizeProblem('+/+/+/+/+/+/+/+/#')?.reason, 'tooManyLevels');
});

test('republish templates: wildcards, NUL and $ prefixes other than $aws/ in the literal text, at their offsets', () => {
  // `loop/${topic()}` has one literal, "loop/", at 0: nothing wrong before substitution.
  assert.equal(topicTemplateProblems([{ text: 'loop/', offset: 0 }]), []);
  assert.equal(topicTemplateProblems([{ text: 'a/', offset: 0 }, { text: '/+', offset: 12 }]).map((p) => [p.reason, p.index]), [['wildcardInTopic', 13]]);
  assert.equal(topicTemplateProblems([{ text: 'a\u0000', offset: 0 }]).map((p) => p.reason), ['nulInTopic']);
  assert.equal(topicTemplateProblems([{ text: '$SYS/x', offset: 0 }]).map((p) => p.reason), ['reservedTopic']);
  assert.equal(topicTemplateProblems([{ text: '$aws/things/', offset: 0 }, { text: '/shadow/update', offset: 24 }]), []);
  // A `$` after a substitution is not a prefix.
  assert.equal(topicTemplateProblems([{ text: '$x', offset: 10 }]), []);
  assert.equal(topicTemplateProblems([{ text: 'a/b/c/d/e/f/g/h/', offset: 0 }]).map((p) => p.reason), ['tooManyLevels']);
  assert.equal(topicTemplateProblems([{ text: 'x'.repeat(300), offset: 0 }]).map((p) => p.reason), ['topicTooLong']);
});

test.run();
