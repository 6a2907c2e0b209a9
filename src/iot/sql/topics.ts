// MQTT topic filters as AWS IoT Core applies them. One difference from MQTT 3.1.1 matters here:
// in AWS IoT, `a/#` matches `a/` and everything below it but NOT the parent topic `a` itself.

import { SqlError } from './errors.js';

/** AWS IoT limits topic names and filters to 256 bytes of UTF-8. */
const MAX_TOPIC_BYTES = 256;

export interface TopicFilterProblem {
  readonly message: string;
  /** 0-based offset in the filter of the offending character. */
  readonly index: number;
}

/** Describes why `filter` is not a valid topic filter, or returns undefined when it is valid. */
export function topicFilterProblem(filter: string): TopicFilterProblem | undefined {
  if (filter.length === 0) return { message: 'the topic filter is empty', index: 0 };
  if (Buffer.byteLength(filter, 'utf8') > MAX_TOPIC_BYTES) {
    return { message: `longer than ${MAX_TOPIC_BYTES} bytes`, index: 0 };
  }
  let levelStart = 0;
  for (let i = 0; i <= filter.length; i++) {
    const c = filter[i];
    if (c === '\u0000') return { message: 'contains a NUL character', index: i };
    if (i < filter.length && c !== '/') continue;
    const level = filter.slice(levelStart, i);
    const hash = level.indexOf('#');
    if (hash >= 0) {
      if (level !== '#') return { message: "'#' must occupy a whole level", index: levelStart + hash };
      if (i !== filter.length) return { message: "'#' must be the last level", index: levelStart };
    }
    const plus = level.indexOf('+');
    if (plus >= 0 && level !== '+') return { message: "'+' must occupy a whole level", index: levelStart + plus };
    levelStart = i + 1;
  }
  return undefined;
}

export function validateTopicFilter(filter: string): void {
  const problem = topicFilterProblem(filter);
  if (problem) throw new SqlError('INVALID_TOPIC_FILTER', `Invalid topic filter '${filter}': ${problem.message}`, filter, problem.index);
}

/**
 * True when `topic` (a topic name, no wildcards) matches `filter`. Wildcards in the first level do
 * not match topics starting with `$` (reserved topics), as in MQTT.
 */
export function topicMatches(filter: string, topic: string): boolean {
  let matcher = matcherCache.get(filter);
  if (!matcher) {
    if (matcherCache.size >= MATCHER_CACHE_LIMIT) matcherCache.delete(matcherCache.keys().next().value!);
    matcher = compileTopicMatcher(filter);
    matcherCache.set(filter, matcher);
  }
  return matcher(topic);
}

// topicMatches() is called per message by routers; keep the compiled filters of the busiest ones.
const matcherCache = new Map<string, (topic: string) => boolean>();
const MATCHER_CACHE_LIMIT = 1024;

/** Precompiles a filter into a predicate that scans the topic without allocating. */
export function compileTopicMatcher(filter: string): (topic: string) => boolean {
  if (!filter.includes('+') && !filter.includes('#')) return (topic) => topic === filter;
  const levels = filter.split('/');
  const endsWithHash = levels[levels.length - 1] === '#';
  const fixed = endsWithHash ? levels.slice(0, -1) : levels;
  const firstIsWildcard = levels[0] === '+' || levels[0] === '#';
  return (topic) => {
    if (firstIsWildcard && topic.charCodeAt(0) === 36 /* $ */) return false;
    let pos = 0;
    for (let l = 0; l < fixed.length; l++) {
      if (pos > topic.length) return false;
      let end = topic.indexOf('/', pos);
      if (end < 0) end = topic.length;
      const want = fixed[l]!;
      if (want !== '+' && (end - pos !== want.length || !topic.startsWith(want, pos))) return false;
      const last = l === fixed.length - 1;
      if (last && !endsWithHash) return end === topic.length;
      pos = end + 1;
    }
    // `#`: at least one more level (possibly empty, as in `a/`) must follow; the parent does not match.
    return pos <= topic.length;
  };
}
