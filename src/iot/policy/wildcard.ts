/**
 * IAM-style wildcard matching: `*` matches any run of characters (including none), `?` exactly one.
 *
 * Patterns are token arrays rather than strings so that text substituted from a policy variable
 * (a client id such as `sensor*`) is always literal: only characters written in the policy itself
 * can be wildcards. That is also what makes `${*}`, `${?}` and `${$}` mean the plain characters.
 */

export const STAR = Symbol('*');
export const ONE = Symbol('?');
/** A `:` written in the policy text: the separator between ARN components. */
export const SEP = Symbol(':');

export type Token = string | typeof STAR | typeof ONE | typeof SEP;

/** Characters of `text` as literal tokens (code points, so `?` matches one emoji, not half of one). */
export function literalTokens(text: string): Token[] {
  return Array.from(text);
}

/** Tokens of policy-written text, where `*`, `?` and `:` are special. */
export function policyTextTokens(text: string): Token[] {
  return Array.from(text, (c) => (c === '*' ? STAR : c === '?' ? ONE : c === ':' ? SEP : c));
}

/** The pattern back as text (for messages and for exact comparisons, where `*` is just a character). */
export function tokensToText(tokens: readonly Token[]): string {
  return tokens.map((t) => (t === STAR ? '*' : t === ONE ? '?' : t === SEP ? ':' : t)).join('');
}

/**
 * Whole-string wildcard match. Greedy two-pointer algorithm with backtracking to the last `*` only:
 * linear in practice and never exponential, unlike a naive regex translation.
 */
export function matchWildcard(pattern: readonly Token[], subject: string, ignoreCase = false): boolean {
  const s = Array.from(ignoreCase ? subject.toLowerCase() : subject);
  const p = ignoreCase ? pattern.map((t) => (typeof t === 'string' ? t.toLowerCase() : t)) : pattern;
  let pi = 0;
  let si = 0;
  let starAt = -1;
  let resumeAt = 0;
  while (si < s.length) {
    const t = p[pi];
    if (t === ONE || (pi < p.length && (t === s[si] || (t === SEP && s[si] === ':')))) {
      pi++;
      si++;
    } else if (t === STAR) {
      starAt = pi++;
      resumeAt = si;
    } else if (starAt >= 0) {
      pi = starAt + 1;
      si = ++resumeAt;
    } else {
      return false;
    }
  }
  while (p[pi] === STAR) pi++;
  return pi === p.length;
}

const ARN_COMPONENTS = 6;

/** Splits `arn:partition:service:region:account:resource` at its first five colons. */
function splitArn(arn: string): string[] | undefined {
  const parts: string[] = [];
  let rest = arn;
  for (let i = 0; i < ARN_COMPONENTS - 1; i++) {
    const at = rest.indexOf(':');
    if (at < 0) return undefined;
    parts.push(rest.slice(0, at));
    rest = rest.slice(at + 1);
  }
  parts.push(rest);
  return parts;
}

/** The pattern's six ARN components, or undefined when it is not a six-part ARN (e.g. a bare `*`). */
function splitArnPattern(pattern: readonly Token[]): Token[][] | undefined {
  const parts: Token[][] = [[]];
  for (const t of pattern) {
    if (t === SEP && parts.length < ARN_COMPONENTS) parts.push([]);
    else parts[parts.length - 1]!.push(t === SEP ? ':' : t);
  }
  return parts.length === ARN_COMPONENTS ? parts : undefined;
}

/**
 * ARN match as IAM does it for Resource and the Arn* condition operators: each of the six
 * colon-separated components is matched on its own, so a `*` in the region never swallows the account.
 * A pattern that is not an ARN at all (`*`) is matched against the whole string; one that starts like
 * an ARN but lacks components (`arn:aws:iot:*`) matches nothing (validatePolicyDocument reports it).
 */
export function matchArn(pattern: readonly Token[], arn: string): boolean {
  const patternParts = splitArnPattern(pattern);
  if (!patternParts) return !startsLikeArn(pattern) && matchWildcard(pattern, arn);
  const arnParts = splitArn(arn);
  if (!arnParts) return false;
  return patternParts.every((part, i) => matchWildcard(part, arnParts[i]!));
}

function startsLikeArn(pattern: readonly Token[]): boolean {
  return pattern[0] === 'a' && pattern[1] === 'r' && pattern[2] === 'n' && pattern[3] === SEP;
}

export function hasWildcard(tokens: readonly Token[]): boolean {
  return tokens.some((t) => t === STAR || t === ONE);
}
