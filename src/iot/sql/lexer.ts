// Pull-based lexer: tokens are produced on demand so that a substitution template can stop
// lexing at the `}` that closes `${...}` without tripping over the literal text after it.

import { SqlError } from './errors.js';

export type TokenKind = 'ident' | 'keyword' | 'number' | 'string' | 'punct' | 'eof';

export interface Token {
  readonly kind: TokenKind;
  /** Keyword: upper-case; punct: the operator text; string: the unescaped value; ident/number: the text. */
  readonly value: string;
  /** For strings, the quote character used (`'` or `"`). */
  readonly quote?: "'" | '"';
  readonly start: number;
  readonly end: number;
}

const KEYWORDS: ReadonlySet<string> = new Set([
  'SELECT', 'VALUE', 'FROM', 'WHERE', 'AS', 'AND', 'OR', 'NOT',
  'CASE', 'WHEN', 'THEN', 'ELSE', 'END', 'TRUE', 'FALSE', 'NULL',
]);

const TWO_CHAR_PUNCT: ReadonlySet<string> = new Set(['<>', '!=', '<=', '>=']);
const ONE_CHAR_PUNCT = ',.()[]{}:*+-/%=<>';

const ESCAPES: Readonly<Record<string, string>> = {
  '\\': '\\', "'": "'", '"': '"', '/': '/', n: '\n', t: '\t', r: '\r', b: '\b', f: '\f',
};

export class Lexer {
  private pos: number;
  private readonly buffered: Token[] = [];

  constructor(readonly source: string, start = 0, private readonly end = source.length) {
    this.pos = start;
  }

  peek(ahead = 0): Token {
    while (this.buffered.length <= ahead) this.buffered.push(this.scan());
    return this.buffered[ahead]!;
  }

  next(): Token {
    return this.buffered.length > 0 ? this.buffered.shift()! : this.scan();
  }

  private error(code: ConstructorParameters<typeof SqlError>[0], message: string, offset: number): SqlError {
    return new SqlError(code, message, this.source, offset);
  }

  private scan(): Token {
    const src = this.source;
    let i = this.pos;
    while (i < this.end && isSpace(src.charCodeAt(i))) i++;
    if (i >= this.end) {
      this.pos = i;
      return { kind: 'eof', value: '', start: i, end: i };
    }
    const start = i;
    const ch = src[i]!;
    const code = src.charCodeAt(i);

    if (isIdentStart(code)) {
      i++;
      while (i < this.end && isIdentPart(src.charCodeAt(i))) i++;
      this.pos = i;
      const text = src.slice(start, i);
      const upper = text.toUpperCase();
      return KEYWORDS.has(upper)
        ? { kind: 'keyword', value: upper, start, end: i }
        : { kind: 'ident', value: text, start, end: i };
    }

    if (isDigit(code)) {
      while (i < this.end && isDigit(src.charCodeAt(i))) i++;
      if (src[i] === '.' && isDigit(src.charCodeAt(i + 1))) {
        i++;
        while (i < this.end && isDigit(src.charCodeAt(i))) i++;
      }
      if (src[i] === 'e' || src[i] === 'E') {
        let j = i + 1;
        if (src[j] === '+' || src[j] === '-') j++;
        if (!isDigit(src.charCodeAt(j))) throw this.error('INVALID_NUMBER', `Malformed exponent in number '${src.slice(start, j)}'`, start);
        i = j;
        while (i < this.end && isDigit(src.charCodeAt(i))) i++;
      }
      if (i < this.end && isIdentStart(src.charCodeAt(i))) {
        throw this.error('INVALID_NUMBER', `Malformed number '${src.slice(start, i + 1)}'`, start);
      }
      this.pos = i;
      return { kind: 'number', value: src.slice(start, i), start, end: i };
    }

    if (ch === "'" || ch === '"') return this.scanString(ch, start);

    const two = src.slice(i, i + 2);
    if (two === '--' || two === '/*') {
      // Would otherwise parse as double negation or division by *, silently changing the rule.
      throw this.error('UNSUPPORTED_SYNTAX', 'Comments are not supported in AWS IoT SQL', start);
    }
    if (TWO_CHAR_PUNCT.has(two) && i + 2 <= this.end) {
      this.pos = i + 2;
      return { kind: 'punct', value: two, start, end: i + 2 };
    }
    if (ONE_CHAR_PUNCT.includes(ch)) {
      this.pos = i + 1;
      return { kind: 'punct', value: ch, start, end: i + 1 };
    }
    throw this.error('INVALID_CHARACTER', `Unexpected character '${ch}'`, start);
  }

  private scanString(quote: "'" | '"', start: number): Token {
    const src = this.source;
    let i = start + 1;
    let out = '';
    let chunkStart = i;
    while (i < this.end) {
      const c = src[i]!;
      if (c === quote) {
        // A doubled quote inside a string stands for one quote character (standard SQL).
        if (src[i + 1] === quote && i + 1 < this.end) {
          out += src.slice(chunkStart, i) + quote;
          i += 2;
          chunkStart = i;
          continue;
        }
        out += src.slice(chunkStart, i);
        this.pos = i + 1;
        return { kind: 'string', value: out, quote, start, end: i + 1 };
      }
      if (c === '\\' && i + 1 < this.end) {
        const e = src[i + 1]!;
        out += src.slice(chunkStart, i);
        if (e === 'u' && /^[0-9a-fA-F]{4}$/.test(src.slice(i + 2, i + 6))) {
          out += String.fromCharCode(parseInt(src.slice(i + 2, i + 6), 16));
          i += 6;
        } else if (e in ESCAPES) {
          out += ESCAPES[e];
          i += 2;
        } else {
          // Unknown escapes keep their backslash, so regex patterns such as '\d+' survive as written.
          out += c + e;
          i += 2;
        }
        chunkStart = i;
        continue;
      }
      i++;
    }
    throw this.error('UNTERMINATED_STRING', `String starting here has no closing ${quote}`, start);
  }
}

function isSpace(c: number): boolean {
  return c === 32 || c === 9 || c === 10 || c === 13 || c === 12 || c === 11;
}
function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}
function isIdentStart(c: number): boolean {
  return (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95; // A-Z a-z _
}
function isIdentPart(c: number): boolean {
  return isIdentStart(c) || isDigit(c);
}
