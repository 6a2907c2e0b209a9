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
}

export function parseYaml(text: string): ParsedYaml {
  const { LineCounter, parseDocument, isScalar } = yaml();
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
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
  return { doc, lineCounter, locate };
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
