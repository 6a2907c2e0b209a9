/**
 * A token scan of SQL text, not a parser: it knows string literals ('..', E'..', $tag$..$tag$), quoted
 * identifiers and comments well enough to skip them, and yields the words and punctuation in between.
 */

/** The length of the literal, quoted identifier or comment that starts at `i`, or 0 when none does. */
export function quotedLength(sql: string, i: number): number {
  const rest = sql.slice(i, i + 2);
  let m: RegExpExecArray | null = null;
  if (rest[0] === "'") m = /^'(?:[^']|'')*'?/.exec(sql.slice(i));
  else if (/^[eE]'/.test(rest) && !/\w/.test(sql[i - 1] ?? '')) m = /^[eE]'(?:[^'\\]|\\[\s\S]|'')*'?/.exec(sql.slice(i));
  else if (rest[0] === '"') m = /^"(?:[^"]|"")*"?/.exec(sql.slice(i));
  else if (rest === '--') m = /^--[^\n]*/.exec(sql.slice(i));
  else if (rest === '/*') m = /^\/\*[\s\S]*?(\*\/|$)/.exec(sql.slice(i));
  else if (rest[0] === '$') {
    const tag = /^\$([A-Za-z_]\w*)?\$/.exec(sql.slice(i));
    if (tag) {
      const end = sql.indexOf(tag[0], i + tag[0].length);
      return end < 0 ? sql.length - i : end + tag[0].length - i;
    }
  }
  return m ? m[0].length : 0;
}

export interface SqlToken {
  /** A word (letters, digits, _) or one punctuation character. */
  text: string;
  offset: number;
}

/** The words and punctuation of `sql` outside literals, quoted identifiers and comments. */
export function* sqlTokens(sql: string): Generator<SqlToken> {
  let i = 0;
  while (i < sql.length) {
    const skip = quotedLength(sql, i);
    if (skip) {
      i += skip;
      continue;
    }
    const word = /^[A-Za-z_][\w$]*|^\d[\w.]*/.exec(sql.slice(i, i + 256));
    if (word) {
      yield { text: word[0], offset: i };
      i += word[0].length;
      continue;
    }
    if (!/\s/.test(sql[i]!)) yield { text: sql[i]!, offset: i };
    i++;
  }
}

/** Table functions that read files (DuckDB's read_*, parquet_*, glob, ...) or run SQL given as text. */
const FILE_FUNCTION = /^(read_\w+|parquet_\w+|glob|sniff_csv|query|query_table|delta_scan|iceberg_\w+|st_read)$/i;
/** What a dataset's one statement may start with: a query. */
const QUERY_START = /^(select|with|values|from|table|\()$/i;

export interface SqlProblem {
  message: string;
  offset: number;
}

/**
 * Why a dataset's SQL is not one query over the lake's tables: a file-reading function, or a statement
 * other than a query (COPY, ATTACH, INSTALL, LOAD, PRAGMA, SET, EXPORT, ...), or a second statement.
 * An early, honest check for `spec validate`; the DuckDB sandbox is what enforces it at run time.
 */
export function lakeQueryProblems(sql: string, opts: { expression?: boolean } = {}): SqlProblem[] {
  const problems: SqlProblem[] = [];
  const tokens = [...sqlTokens(sql)];
  let statementStart = !opts.expression;
  tokens.forEach((t, n) => {
    const next = tokens[n + 1]?.text;
    if (t.text === ';') {
      if ((opts.expression || n < tokens.length - 1) && !problems.some((p) => p.message.startsWith('has more'))) problems.push({ message: 'has more than one statement; dataset SQL is one query', offset: t.offset });
      statementStart = !opts.expression;
      return;
    }
    if (statementStart && !QUERY_START.test(t.text))
      problems.push({ message: `starts with ${t.text.toUpperCase()}, not a query; dataset SQL is one query (SELECT or WITH) over the lake's tables`, offset: t.offset });
    statementStart = false;
    if (next === '(' && FILE_FUNCTION.test(t.text)) problems.push({ message: `reads files with ${t.text}(); dataset SQL can read only the lake's tables (datastores and channels.<name>)`, offset: t.offset });
  });
  return problems;
}
