/**
 * Lambda's log lines, as CloudWatch Logs and Invoke's LogResult carry them, parsed into the fields
 * `lambda logs` and `lambda invoke` show. Pure; no I/O.
 *
 *   START RequestId: <id> Version: $LATEST
 *   2024-05-01T10:00:00.000Z\t<id>\tINFO\tmessage          (the Node.js runtime's text format)
 *   {"timestamp":"…","level":"ERROR","requestId":"<id>","message":"…"}   (the JSON log format)
 *   END RequestId: <id>
 *   REPORT RequestId: <id>\tDuration: 12.34 ms\tBilled Duration: 13 ms\tMemory Size: 256 MB\tMax Memory Used: 80 MB\tInit Duration: 150.00 ms
 */

export interface ParsedLogLine {
  requestId: string | null;
  level: string;
  message: string;
}

const LEVELS = new Set(['INFO', 'WARN', 'ERROR', 'DEBUG', 'TRACE', 'FATAL']);
const UUID = '[0-9a-fA-F-]{36}';

export function parseLogLine(raw: string): ParsedLogLine {
  const line = raw.replace(/\n$/, '');
  const platform = new RegExp(`^(START|END|REPORT) RequestId: (${UUID})`).exec(line);
  if (platform) return { requestId: platform[2]!, level: platform[1]!, message: line };
  const text = new RegExp(`^\\d{4}-\\d\\d-\\d\\dT[^\\t]+\\t(${UUID}|undefined)\\t([A-Z]+)\\t([\\s\\S]*)$`).exec(line);
  if (text && LEVELS.has(text[2]!)) return { requestId: text[1] === 'undefined' ? null : text[1]!, level: text[2] === 'FATAL' ? 'ERROR' : text[2]!, message: text[3]! };
  if (line.startsWith('{')) {
    try {
      const doc = JSON.parse(line) as { level?: unknown; requestId?: unknown; message?: unknown };
      const level = typeof doc.level === 'string' ? doc.level.toUpperCase() : '';
      if (LEVELS.has(level)) return { requestId: typeof doc.requestId === 'string' ? doc.requestId : null, level, message: typeof doc.message === 'string' ? doc.message : line };
    } catch {
      /* a plain line that happens to start with { */
    }
  }
  // INIT_START, platform.* and anything a handler wrote straight to stdout.
  return { requestId: null, level: 'INFO', message: line };
}

export interface ReportFields {
  requestId: string;
  durationMs?: number;
  billedDurationMs?: number;
  initDurationMs?: number;
  maxMemoryUsedMb?: number;
}

export function parseReport(line: string): ReportFields | undefined {
  const id = new RegExp(`^REPORT RequestId: (${UUID})`).exec(line);
  if (!id) return undefined;
  const num = (label: string) => {
    const m = new RegExp(`${label}: ([\\d.]+)`).exec(line);
    return m ? Number(m[1]) : undefined;
  };
  return {
    requestId: id[1]!,
    durationMs: num('\\tDuration'),
    billedDurationMs: num('Billed Duration'),
    initDurationMs: num('Init Duration'),
    maxMemoryUsedMb: num('Max Memory Used'),
  };
}

/**
 * Invoke's LogResult: the last 4 KB of the invocation's log, base64. When it was cut, its first line is
 * a fragment; that fragment is dropped so every line shown is whole.
 */
export function decodeLogTail(logResult: string | undefined): string[] {
  if (!logResult) return [];
  const bytes = Buffer.from(logResult, 'base64');
  let text = bytes.toString('utf8');
  if (bytes.length >= 4096 && !/^(START|INIT_START) /.test(text)) text = text.slice(text.indexOf('\n') + 1);
  return text.split('\n').filter((l) => l.length > 0);
}
