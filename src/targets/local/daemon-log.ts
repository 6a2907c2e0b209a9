import { appendFileSync, renameSync, rmSync, statSync } from 'node:fs';

/** daemon.log rotates at 10 MB; daemon.log.1 .. daemon.log.3 are kept. */
export const LOG_ROTATE_BYTES = 10 * 1024 * 1024;
export const LOG_KEEP = 3;

/**
 * One log record per line, whatever a peer put into it: control characters (newlines, ESC, NUL, the C1 range,
 * U+2028/9) in logged values, such as a device's topic or client id, are escaped, so they cannot forge a line
 * or drive a terminal.
 */
export function escapeControl(line: string): string {
  return line.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029\\]/g, (c) => {
    if (c === '\\') return '\\\\';
    if (c === '\n') return '\\n';
    if (c === '\r') return '\\r';
    if (c === '\t') return '\\t';
    const code = c.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}

/** Appends lines to `file`, rotating it by size (file -> file.1 -> ... -> file.<keep>). Never throws. */
export class RotatingLog {
  private size: number;
  constructor(private readonly file: string, private readonly maxBytes = LOG_ROTATE_BYTES, private readonly keep = LOG_KEEP) {
    try {
      this.size = statSync(file).size;
    } catch {
      this.size = 0;
    }
  }

  append(line: string): void {
    const text = line + '\n';
    const bytes = Buffer.byteLength(text);
    try {
      if (this.size > 0 && this.size + bytes > this.maxBytes) this.rotate();
      appendFileSync(this.file, text, { mode: 0o600 });
      this.size += bytes;
    } catch {
      /* logging must never take the platform down */
    }
  }

  private rotate(): void {
    rmSync(`${this.file}.${this.keep}`, { force: true });
    for (let i = this.keep - 1; i >= 1; i--) {
      try {
        renameSync(`${this.file}.${i}`, `${this.file}.${i + 1}`);
      } catch {
        /* not there yet */
      }
    }
    renameSync(this.file, `${this.file}.1`);
    this.size = 0;
  }
}
