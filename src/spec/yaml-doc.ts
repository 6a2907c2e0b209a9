import { createRequire } from 'node:module';
import type * as Yaml from 'yaml';

let yamlModule: typeof Yaml | undefined;
/** The yaml package, required on first use (its Node build is CommonJS), so a spec read from the cache never loads it. */
export function yaml(): typeof Yaml {
  return (yamlModule ??= createRequire(import.meta.url)('yaml') as typeof Yaml);
}

export type Locate = (path: readonly PropertyKey[], offsetInValue?: number) => { line: number; col: number };

export interface ParsedYaml {
  doc: Yaml.Document;
  lineCounter: Yaml.LineCounter;
  /** file:line:col of a path in the document (a missing key points at its parent map). */
  locate: Locate;
  /** Problems the yaml package does not report: duplicate keys (found in linear time), at an offset. */
  problems: { offset: number; message: string }[];
  /** The document as plain data, with alias expansion capped (a "billion laughs" document is refused). */
  toJS(): unknown;
}

/**
 * Bounds on a spec's YAML, so that hostile or mistaken input ends in a clear error in well under a second.
 * The sample spec of `iotctl init` has about 700 tokens; parsing costs about 4 µs per token.
 */
export const YAML_LIMITS = { tokens: 50_000, aliasCount: 100 } as const;

/** The spec exceeds YAML_LIMITS (or expands too many aliases) at this offset. */
export class YamlLimitError extends Error {
  constructor(
    message: string,
    readonly offset: number,
  ) {
    super(message);
  }
}

/** Lexes at most `limit` tokens (cheap, and stops early) before the parser, whose cost grows with them, runs. */
function checkTokenCount(text: string, limit: number): void {
  const { Lexer } = yaml();
  let count = 0;
  let offset = 0;
  for (const token of new Lexer().lex(text)) {
    // Single control characters are the lexer's markers, not source text.
    if (!(token.length === 1 && token < ' ' && token !== '\n' && token !== '\t' && token !== '\r') && token !== '\u{FEFF}') offset += token.length;
    if (++count > limit) throw new YamlLimitError(`the document has more than ${limit.toLocaleString('en-US')} YAML tokens (keys, values, punctuation)`, offset);
  }
}

export function parseYaml(text: string): ParsedYaml {
  const { LineCounter, parseDocument, isScalar, isMap, isAlias, visit } = yaml();
  checkTokenCount(text, YAML_LIMITS.tokens);
  const lineCounter = new LineCounter();
  // uniqueKeys is checked below with a Set: the package compares every pair of keys (80,000 keys took 80 s).
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: false });
  const problems: ParsedYaml['problems'] = [];
  let firstAlias: number | undefined;
  visit(doc, {
    Map(_, map) {
      if (!isMap(map)) return;
      const seen = new Set<unknown>();
      for (const pair of map.items) {
        const key = isScalar(pair.key) ? pair.key.value : pair.key;
        if (seen.has(key)) problems.push({ offset: (pair.key as Yaml.Node | null)?.range?.[0] ?? 0, message: 'Map keys must be unique' });
        seen.add(key);
      }
    },
    Alias(_, alias) {
      if (isAlias(alias)) firstAlias ??= alias.range?.[0];
    },
  });
  const toJS = () => {
    try {
      return doc.toJS({ maxAliasCount: YAML_LIMITS.aliasCount });
    } catch (e) {
      // yaml's guard against exponential alias expansion (it throws a ReferenceError).
      if (e instanceof ReferenceError && /alias/i.test(e.message)) throw new YamlLimitError(`aliases expand into too much data (over ${YAML_LIMITS.aliasCount} expansions, a "billion laughs" pattern)`, firstAlias ?? 0);
      throw e;
    }
  };
  const locate: Locate = (path, offsetInValue = 0) => {
    const { node, keyNode } = nodeAt(doc, path);
    const start = node?.range?.[0] ?? keyNode?.range?.[0] ?? 0;
    // Point inside a block scalar's text (e.g. a SQL error column) when asked.
    let at = start;
    if (offsetInValue && isScalar(node) && typeof node.value === 'string') {
      const src = text.slice(start, node.range?.[1]);
      const idx = locateInScalarSource(src, node.value, offsetInValue);
      at = start + idx;
    }
    return lineCounter.linePos(at);
  };
  return { doc, lineCounter, locate, problems, toJS };
}

/** The node at a path, or the deepest existing ancestor (a missing key points at its parent map). */
function nodeAt(doc: Yaml.Document, path: readonly PropertyKey[]): { node: Yaml.Node | null; keyNode?: Yaml.Node } {
  const { isMap, isSeq, isScalar } = yaml();
  let node = doc.contents as Yaml.Node | null;
  let keyNode: Yaml.Node | undefined;
  for (const k of path) {
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(k));
      if (!pair) return { node, keyNode };
      keyNode = pair.key as Yaml.Node;
      node = (pair.value as Yaml.Node) ?? keyNode;
    } else if (isSeq(node) && typeof k === 'number' && node.items[k]) {
      node = node.items[k] as Yaml.Node;
      keyNode = undefined;
    } else return { node, keyNode };
  }
  return { node, keyNode };
}

/** Map an offset in a scalar's value to an offset in its source text (handles block scalars' indentation). */
function locateInScalarSource(src: string, value: string, offset: number): number {
  const before = value.slice(0, offset);
  const lines = before.split('\n');
  const srcLines = src.split('\n');
  if (lines.length === 1 && srcLines.length === 1) {
    const quote = /^['"]/.test(src) ? 1 : 0;
    return quote + offset;
  }
  // Block scalar: the first source line is the indicator (| or >); content starts on the next line.
  const contentStart = /^[|>]/.test(src) ? 1 : 0;
  const lineIdx = lines.length - 1 + contentStart;
  let idx = 0;
  for (let i = 0; i < lineIdx && i < srcLines.length; i++) idx += srcLines[i]!.length + 1;
  const srcLine = srcLines[lineIdx] ?? '';
  const indent = srcLine.length - srcLine.trimStart().length;
  return idx + indent + lines[lines.length - 1]!.length;
}
