// Errors raised by the IoT SQL engine. Compile-time problems carry a source position so the CLI
// can point at the fault; runtime problems name the function or construct that failed.

export type SqlErrorCode =
  | 'UNEXPECTED_TOKEN'
  | 'UNEXPECTED_END'
  | 'UNTERMINATED_STRING'
  | 'INVALID_CHARACTER'
  | 'INVALID_NUMBER'
  | 'UNKNOWN_FUNCTION'
  | 'WRONG_ARITY'
  | 'INVALID_CAST_TYPE'
  | 'INVALID_ARGUMENT'
  | 'INVALID_TOPIC_FILTER'
  | 'UNSUPPORTED_SYNTAX'
  | 'UNTERMINATED_TEMPLATE'
  | 'EMPTY_TEMPLATE_EXPRESSION'
  /** Parentheses, operators or nested queries deeper than the parser's cap (MAX_NESTING). */
  | 'TOO_DEEPLY_NESTED';

export type SqlRuntimeErrorCode =
  /** The function needs another AWS service (DynamoDB, Lambda, ...) that the local target does not have. */
  | 'NOT_SUPPORTED_LOCALLY'
  /** The statement reads JSON attributes, but the payload is not JSON (AWS rejects this too). */
  | 'PAYLOAD_NOT_JSON'
  /** The evaluation context is missing or malformed (for example no topic). */
  | 'INVALID_CONTEXT'
  /** The evaluation ran past its time budget (for example a regex that backtracks catastrophically). */
  | 'EVALUATION_TIMEOUT'
  /** A payload value is nested too deeply to compare or serialise. */
  | 'TOO_DEEPLY_NESTED';

/** How much of a long source line format() shows around the fault. */
const MAX_SHOWN = 160;

export class SqlError extends Error {
  override readonly name = 'SqlError';
  /** 1-based line and column of `offset` in `source`. */
  readonly line: number;
  readonly col: number;

  constructor(
    readonly code: SqlErrorCode,
    message: string,
    /** The full text that was being compiled (SQL statement, expression or template). */
    readonly source: string,
    /** 0-based offset of the fault in `source`. */
    readonly offset: number,
  ) {
    super(message);
    const { line, col } = lineCol(source, offset);
    this.line = line;
    this.col = col;
  }

  /** The message, the offending source line (around the fault, if it is long) and a caret under the fault. */
  format(): string {
    const lines = this.source.split(/\r\n|\r|\n/);
    const line = lines[this.line - 1] ?? '';
    // A generated one-line statement can be megabytes long: show a window around the fault.
    const from = line.length > MAX_SHOWN ? Math.max(0, this.col - 1 - MAX_SHOWN / 2) : 0;
    const to = Math.min(line.length, from + MAX_SHOWN);
    const text = (from > 0 ? '…' : '') + line.slice(from, to) + (to < line.length ? '…' : '');
    // Keep tabs in the padding so the caret lines up under tab-indented SQL.
    const pad = (from > 0 ? ' ' : '') + line.slice(from, this.col - 1).replace(/[^\t]/g, ' ');
    return `${this.code}: ${this.message} (line ${this.line}, col ${this.col})\n  ${text}\n  ${pad}^`;
  }
}

export class SqlRuntimeError extends Error {
  override readonly name = 'SqlRuntimeError';
  constructor(
    readonly code: SqlRuntimeErrorCode,
    message: string,
    /** Lower-case function name when a function raised the error. */
    readonly functionName?: string,
  ) {
    super(message);
  }
}

export function lineCol(source: string, offset: number): { line: number; col: number } {
  let line = 1;
  let lineStart = 0;
  const end = Math.min(Math.max(offset, 0), source.length);
  for (let i = 0; i < end; i++) {
    const ch = source.charCodeAt(i);
    if (ch === 10 /* \n */ || (ch === 13 /* \r */ && source.charCodeAt(i + 1) !== 10)) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, col: end - lineStart + 1 };
}
