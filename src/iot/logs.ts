/** CloudWatch's line format: timestamp, request id, level, message (START/END/REPORT lines stand alone). */
export function formatLogEvent(e: { timestamp: number; level: string; message: string; requestId: string | null }): string {
  const ts = new Date(e.timestamp).toISOString();
  if (e.level === 'START' || e.level === 'END' || e.level === 'REPORT') return `${ts} ${e.message}`;
  if (e.message.startsWith(ts) || !e.requestId) return `${ts} ${e.message}`;
  return `${ts}\t${e.requestId}\t${e.level}\t${e.message}`;
}
