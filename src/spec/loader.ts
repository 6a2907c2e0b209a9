import { readFileSync, existsSync } from 'node:fs';
import { basename, relative } from 'node:path';
import { LineCounter, parseDocument, isMap, isSeq, isScalar, type Node, type Document } from 'yaml';
import { specSchema, type Spec } from './schema.js';
import { UserError } from '../ui/errors.js';
import { specChecks } from './checks.js';
import { defaultAthenaDatabase } from './names.js';

export interface SpecProblem {
  file: string;
  line: number;
  col: number;
  path: string;
  message: string;
  hint?: string;
}


export class SpecError extends UserError {
  constructor(readonly problems: SpecProblem[]) {
    super(
      `${problems.length} problem${problems.length === 1 ? '' : 's'} in ${problems[0]?.file ?? 'spec'}:\n` + problems.map(formatProblem).join('\n'),
      'Fix the lines above, then run `iotctl spec validate`. `iotctl spec schema` gives editors completion.',
      'SPEC_INVALID',
    );
  }
}

export function formatProblem(p: SpecProblem): string {
  return `  ${p.file}:${p.line}:${p.col} ${p.path || '(root)'}: ${p.message}${p.hint ? `\n      hint: ${p.hint}` : ''}`;
}

export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const k of path) out += typeof k === 'number' ? `[${k}]` : out ? `.${String(k)}` : String(k);
  return out;
}

/** The node at a path, or the deepest existing ancestor (a missing key points at its parent map). */
function nodeAt(doc: Document, path: readonly PropertyKey[]): { node: Node | null; keyNode?: Node } {
  let node = doc.contents as Node | null;
  let keyNode: Node | undefined;
  for (const k of path) {
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(k));
      if (!pair) return { node, keyNode };
      keyNode = pair.key as Node;
      node = (pair.value as Node) ?? keyNode;
    } else if (isSeq(node) && typeof k === 'number' && node.items[k]) {
      node = node.items[k] as Node;
      keyNode = undefined;
    } else return { node, keyNode };
  }
  return { node, keyNode };
}

export interface LoadedSpec {
  spec: Spec;
  file: string;
  text: string;
  /** file:line:col of a path in the spec, for errors found after loading. */
  locate(path: readonly PropertyKey[], offsetInValue?: number): { line: number; col: number };
}

export function parseSpec(text: string, file = 'iotctl.yaml'): LoadedSpec {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const shown = basename(file) === file ? file : relative(process.cwd(), file) || file;
  const problems: SpecProblem[] = [];
  for (const e of doc.errors) {
    const pos = lineCounter.linePos(e.pos[0]);
    problems.push({ file: shown, line: pos.line, col: pos.col, path: '', message: e.message.split('\n')[0]!, hint: 'This is a YAML syntax error.' });
  }
  if (problems.length) throw new SpecError(problems);

  const locate = (path: readonly PropertyKey[], offsetInValue = 0) => {
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

  const raw = doc.toJS() ?? {};
  const parsed = specSchema.safeParse(raw);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const { line, col } = locate(issue.path);
      problems.push({ file: shown, line, col, path: formatPath(issue.path), message: issue.message, hint: hintFor(issue) });
    }
    throw new SpecError(problems);
  }
  const spec = parsed.data;
  // athena.database defaults to the project name made an Athena name (`fleet-eu` -> `fleet_eu`).
  const rawAthena = (raw as { athena?: { database?: unknown } }).athena;
  if (rawAthena?.database === undefined) spec.athena.database = defaultAthenaDatabase(spec.project);
  for (const check of specChecks) {
    for (const p of check(spec)) {
      const { line, col } = locate(p.path, p.offset);
      problems.push({ file: shown, line, col, path: formatPath(p.path), message: p.message, hint: p.hint });
    }
  }
  if (problems.length) throw new SpecError(problems);
  return { spec, file, text, locate };
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

function hintFor(issue: { code: string; message: string; path: PropertyKey[] }): string | undefined {
  if (issue.code === 'unrecognized_keys') return 'Remove the key, or check its spelling against `iotctl spec schema`.';
  if (issue.code === 'invalid_union') return 'Each action/activity is a one-key map, e.g. `- kinesis: {stream: telemetry}`.';
  if (issue.code === 'invalid_type') return 'See `iotctl spec schema` for the expected type.';
  return undefined;
}

export function loadSpec(file: string): LoadedSpec {
  if (!existsSync(file)) {
    throw new UserError(`No spec at ${file}.`, 'Run `iotctl init` to write one, or pass --spec PATH.', 'SPEC_NOT_FOUND');
  }
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new UserError(`Cannot read ${file}: ${(e as Error).message}`, 'Check the file permissions.', 'SPEC_UNREADABLE');
  }
  return parseSpec(text, file);
}
