// AWS IoT Core's limits on topic names (message broker quotas, "Topic size" and "Maximum number of slashes in
// topic and topic filter"): at most 256 bytes of UTF-8 and at most 7 forward slashes; a PUBLISH topic has no
// wildcards. The broker, the republish action and `spec validate` all hold topics to these limits here, so a
// rule that republishes to a growing topic ends in its errorAction after a few hops, as on AWS.

/** "The topic passed to the message broker when publishing a message can't exceed 256 bytes of UTF-8." */
export const MAX_TOPIC_BYTES = 256;
/** "The topic provided while publishing or subscribing can have no more than seven forward slashes (/)." */
export const MAX_TOPIC_SLASHES = 7;

export type TopicProblemReason = 'emptyTopic' | 'topicTooLong' | 'tooManyLevels' | 'wildcardInTopic' | 'nulInTopic' | 'reservedTopic';

export interface TopicProblem {
  readonly reason: TopicProblemReason;
  readonly message: string;
  /** 0-based offset of the offending character (0 when the topic as a whole is at fault). */
  readonly index: number;
}

/** `$aws/rules/<ruleName>/`: the Basic Ingest prefix, which does not count toward the slash limit. */
const BASIC_INGEST_PREFIX = /^\$aws\/rules\/[^/]+\//;

/** Why `topic` cannot be published to (as a topic name, not a filter), or undefined when it can. */
export function publishTopicProblem(topic: string): TopicProblem | undefined {
  if (topic.length === 0) return { reason: 'emptyTopic', message: 'the topic is empty', index: 0 };
  for (let i = 0; i < topic.length; i++) {
    const c = topic.charCodeAt(i);
    if (c === 0) return { reason: 'nulInTopic', message: 'the topic contains a NUL character', index: i };
    if (c === 43 /* + */ || c === 35 /* # */) return { reason: 'wildcardInTopic', message: `the topic contains the wildcard '${topic[i]}', which only topic filters may use`, index: i };
  }
  return sizeProblem(topic);
}

/** The size limits alone (bytes and slashes), shared by topic names and topic filters. */
export function sizeProblem(topicOrFilter: string): TopicProblem | undefined {
  const bytes = Buffer.byteLength(topicOrFilter, 'utf8');
  if (bytes > MAX_TOPIC_BYTES) return { reason: 'topicTooLong', message: `the topic is ${bytes} bytes long; AWS IoT allows at most ${MAX_TOPIC_BYTES}`, index: 0 };
  const prefix = BASIC_INGEST_PREFIX.exec(topicOrFilter)?.[0].length ?? 0;
  let slashes = 0;
  for (let i = prefix; i < topicOrFilter.length; i++) {
    if (topicOrFilter.charCodeAt(i) === 47 /* / */ && ++slashes > MAX_TOPIC_SLASHES) {
      return { reason: 'tooManyLevels', message: `the topic has more than ${MAX_TOPIC_SLASHES} forward slashes; AWS IoT allows at most ${MAX_TOPIC_SLASHES}`, index: i };
    }
  }
  return undefined;
}

/** A literal piece of a substitution template (`loop/${topic()}` has one: "loop/" at 0). */
export interface TemplateLiteral {
  readonly text: string;
  /** Offset of the piece in the template. */
  readonly offset: number;
}

/**
 * Problems a republish topic template has whatever its substitutions render to: wildcards or NUL in its
 * literal text, a reserved `$` prefix other than `$aws/` (AWS lets rules republish to `$aws/...` topics),
 * or literal text that already breaks the size limits.
 */
export function topicTemplateProblems(literals: readonly TemplateLiteral[]): TopicProblem[] {
  const problems: TopicProblem[] = [];
  for (const { text, offset } of literals) {
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c === 0) problems.push({ reason: 'nulInTopic', message: 'the topic contains a NUL character', index: offset + i });
      else if (c === 43 || c === 35) problems.push({ reason: 'wildcardInTopic', message: `the topic contains the wildcard '${text[i]}', which only topic filters may use`, index: offset + i });
    }
  }
  const first = literals[0];
  if (first && first.offset === 0 && first.text.startsWith('$') && !first.text.startsWith('$aws/')) {
    problems.push({ reason: 'reservedTopic', message: `topics starting with $ are reserved ("${first.text.split('/')[0]}/..."); a rule may republish only to $aws/... among them`, index: 0 });
  }
  const literalText = literals.map((l) => l.text).join('');
  const size = sizeProblem(literalText);
  if (size) problems.push({ ...size, message: `${size.message}, before any substitution`, index: 0 });
  return problems;
}
