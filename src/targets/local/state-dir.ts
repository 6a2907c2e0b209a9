import { chmodSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The state directory (`.iotctl`) is private: 0700, and every file in it 0600, because it holds the CA's key,
 * the database credentials (postgres.json) and every message. ensureStateDir() is the one place that creates
 * or opens it; every iotctl command (the daemon too) runs with umask 077 (BaseCommand.init), so whatever any
 * part of the platform creates in it afterwards (SQLite's -wal/-shm, logs, the lake's Parquet) is private too.
 * (Not set here: a test process that hosts a platform must keep its own umask for the files it shares.)
 *
 * The marker file says "this is an iotctl state directory" (`local reset` deletes nothing else) and which
 * layout it has: a directory from an older iotctl, without it, is tightened once.
 */
export const STATE_MARKER = '.iotctl-state';
const LAYOUT = 'iotctl state directory, layout 2 (private)\n';

/** Files only iotctl writes at the top of a state directory: an older one without the marker has some of them. */
const KNOWN_FILES = ['state.db', 'ingress.db', 'postgres.json', 'daemon.lock', 'daemon.log', 'status.json', 'spec-cache.json'];

/** Create the state directory, or tighten one an older iotctl left open; then it is 0700 with 0600 files. */
export function ensureStateDir(stateDir: string): void {
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const marker = join(stateDir, STATE_MARKER);
  if ((statSync(stateDir).mode & 0o777) !== 0o700) chmodSync(stateDir, 0o700);
  if (readMarker(marker) === LAYOUT) return;
  tighten(stateDir);
  writeFileSync(marker, LAYOUT, { mode: 0o600 });
}

/** Whether `dir` is an iotctl state directory: the marker, or (from an older iotctl) files only iotctl writes. */
export function isStateDir(dir: string): boolean {
  if (existsSync(join(dir, STATE_MARKER))) return true;
  return KNOWN_FILES.some((f) => existsSync(join(dir, f)));
}

function readMarker(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

/** chmod go-rwx below `dir`, never through a symlink; the embedded PostgreSQL's data directory is its own business (0700 already). */
function tighten(dir: string): void {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    let st;
    try {
      st = lstatSync(path);
    } catch {
      continue; // removed meanwhile
    }
    if (st.isSymbolicLink()) continue;
    if (st.mode & 0o077) chmodSync(path, st.mode & 0o700);
    if (st.isDirectory() && !existsSync(join(path, 'PG_VERSION'))) tighten(path);
  }
}
