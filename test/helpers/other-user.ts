import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * The security tests run as root (as CI does) and attack as a second local user. `nobody` exists on every
 * Debian machine; runuser needs root, so these tests skip themselves when not root.
 */
export const OTHER_USER = 'nobody';
export const canActAsOtherUser = process.getuid?.() === 0 && spawnSync('runuser', ['-u', OTHER_USER, '--', 'true']).status === 0;

export interface OtherUserResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command as the other local user (no shell unless the caller asks for `sh -c`). */
export function asOtherUser(command: string, args: string[], opts: { cwd?: string; input?: string; timeoutMs?: number } = {}): OtherUserResult {
  const r = spawnSync('runuser', ['-u', OTHER_USER, '--', command, ...args], { cwd: opts.cwd ?? '/', input: opts.input, encoding: 'utf8', timeout: opts.timeoutMs ?? 30_000 });
  return { code: r.status ?? 1, stdout: r.stdout ?? '', stderr: (r.stderr ?? '') + (r.error ? String(r.error) : '') };
}

/**
 * A folder that the other user can enter (0755, or 01777 when it must write there too), unlike
 * mkdtemp's 0700: an attack refused only because the parent was closed would prove nothing.
 */
export function sharedTempDir(opts: { writable?: boolean } = {}): { dir: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'iotctl-shared-'));
  chmodSync(dir, opts.writable ? 0o1777 : 0o755);
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
