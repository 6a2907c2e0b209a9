import { closeSync, constants, createReadStream, createWriteStream, fstatSync, linkSync, lstatSync, statSync, mkdirSync, mkdtempSync, openSync, readSync, renameSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { once } from 'node:events';
import { pipeline } from 'node:stream/promises';
import { basename, dirname, join, resolve } from 'node:path';
import type { Writable } from 'node:stream';
import { formatBytes } from '../ui/format.js';
import { UserError } from '../ui/errors.js';

/**
 * One reader for user-named files and one writer for every file the CLI writes where a user pointed it.
 *
 * Reading: a byte cap enforced while reading (never trusting the size stat gives: /dev/zero and /proc files
 * claim 0 bytes), directories and FIFOs refused up front (a FIFO with no writer would block forever), and
 * every failure a UserError naming the path and the flag.
 *
 * Writing: never through a path another local user may have prepared. Content goes to a file created with
 * O_EXCL|O_NOFOLLOW in a fresh mkdtemp folder (0700, random name) beside the destination, with its final mode
 * from creation, and is then moved into place: hard-linked when the destination must not exist (link(2) fails
 * on any existing name, a dangling symlink included, with no window between check and create), renamed over
 * it with --force (rename replaces a symlink itself, never writes through it).
 */

/** Caps for files a command reads; generous for real input, small enough that a mistake ends in a second. */
export const READ_LIMITS = {
  /** Anything without its own cap (payloads, policies, SQL, JSON Lines of test messages). */
  default: 16 * 1024 * 1024,
  /** A CSR is 1-4 KB even for RSA 4096. */
  csr: 64 * 1024,
  /** A CA bundle (the whole Mozilla bundle is about 220 KB). */
  caFile: 1024 * 1024,
  /** Bulk registration: ~100,000 rows of `thingName,thingType,attributes`. */
  devicesCsv: 4 * 1024 * 1024,
  /** An MQTT payload: AWS IoT's message size limit. */
  payload: 128 * 1024,
  /** iotctl.yaml. */
  spec: 1024 * 1024,
} as const;

const CHUNK = 64 * 1024;

export interface ReadOptions {
  /** Refuse a file larger than this (bytes); counted while reading. */
  maxBytes?: number;
  /** Error code for a file that is too large. */
  tooLargeCode?: string;
}

/** Read a file the user named; a missing, unreadable, special or oversized one is a user error that names the flag to fix. */
export function readUserFile(file: string, fix: string, what = '', opts: ReadOptions = {}): Buffer {
  const maxBytes = opts.maxBytes ?? READ_LIMITS.default;
  const name = `${what}${file}`;
  let fd: number;
  try {
    // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever.
    fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (e) {
    throw readError(e, name, fix);
  }
  try {
    const stat = fstatSync(fd);
    if (stat.isDirectory()) throw new UserError(`${name} is a directory, not a file.`, fix, 'FILE_IS_DIRECTORY');
    if (stat.isFIFO() || stat.isSocket()) throw new UserError(`${name} is a ${stat.isFIFO() ? 'FIFO' : 'socket'}, not a regular file.`, `${fix} Save the content to a file first.`, 'FILE_NOT_REGULAR');
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const chunk = Buffer.allocUnsafe(CHUNK);
      const n = readSync(fd, chunk, 0, CHUNK, null);
      if (n === 0) break;
      total += n;
      if (total > maxBytes) throw new UserError(`${name} is larger than ${formatBytes(maxBytes)}.`, fix, opts.tooLargeCode ?? 'FILE_TOO_LARGE');
      chunks.push(n === CHUNK ? chunk : chunk.subarray(0, n));
    }
    return Buffer.concat(chunks, total);
  } catch (e) {
    if (e instanceof UserError) throw e;
    throw readError(e, name, fix);
  } finally {
    closeSync(fd);
  }
}

function readError(e: unknown, name: string, fix: string): UserError {
  const code = (e as NodeJS.ErrnoException).code;
  const why =
    code === 'ENOENT' ? 'no such file' : code === 'EACCES' || code === 'EPERM' ? 'permission denied' : code === 'EISDIR' ? 'it is a directory' : code === 'EAGAIN' ? 'it is a device with nothing to read' : (code ?? (e as Error).message);
  return new UserError(`Cannot read ${name}: ${why}.`, fix, code === 'ENOENT' ? 'FILE_NOT_FOUND' : 'FILE_UNREADABLE');
}

/** A `JSON text | @file` argument, as bytes. */
export function inlineOrFile(arg: string): Buffer {
  // AWS IoT refuses a message larger than 128 KB.
  return arg.startsWith('@') ? readUserFile(arg.slice(1), 'Check the path after @; AWS IoT accepts messages of at most 128 KB.', 'the payload file ', { maxBytes: READ_LIMITS.payload }) : Buffer.from(arg);
}

// ------------------------------------------------------------------ writing

export interface WriteOptions {
  /** Replace an existing file (by rename: a symlink there is replaced, not followed). */
  force?: boolean;
  /** The file's mode from creation (0600 for keys); the umask still applies. */
  mode?: number;
  /** The flag that named the destination, for the error's fix (e.g. "--out"). */
  flag?: string;
  /** The mode of parent folders created on the way (default 0777 less the umask). */
  parentMode?: number;
}

const EXCLUSIVE_CREATE = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

/** A file being written beside its destination; commit() moves it into place, discard() removes it. */
export interface StagedFile {
  /** The temporary file (in a private folder); already created, empty. */
  readonly tempPath: string;
  readonly dest: string;
  commit(): void;
  discard(): void;
}

/**
 * Refuses an existing destination (without force), and always a folder or a special file (device, FIFO,
 * socket), also behind a symlink: --force replaces a regular file or a link, never /dev/null or /dev/stdout
 * (renaming over them as root would replace the device). Call it before any costly work.
 */
export function checkDestination(dest: string, opts: WriteOptions): void {
  let existing;
  try {
    existing = lstatSync(dest);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw writeError(e, dest, opts);
  }
  let target = existing;
  if (existing.isSymbolicLink()) {
    try {
      target = statSync(dest);
    } catch {
      // A dangling link: it is replaced (with force), never followed.
    }
  }
  if (target.isDirectory()) throw new UserError(`${dest} is a directory.`, `Give a file path to ${opts.flag ?? 'the command'}.`, 'OUTPUT_IS_DIRECTORY');
  if (!target.isFile() && !target.isSymbolicLink())
    throw new UserError(`${dest} is not a regular file (a device, FIFO or socket).`, `${opts.flag ?? 'The command'} writes a new regular file; to print the result instead, leave it out.`, 'OUTPUT_NOT_REGULAR');
  if (!opts.force) throw new UserError(`${dest} already exists.`, `Pass --force to replace it, or choose another ${opts.flag ?? 'path'}.`, 'OUTPUT_EXISTS');
}

/** A private (0700, random name) folder in `parent`, created first if missing. */
function privateFolderIn(parent: string, prefix: string, opts: WriteOptions): string {
  try {
    mkdirSync(parent, { recursive: true, mode: opts.parentMode });
    return mkdtempSync(join(parent, prefix));
  } catch (e) {
    throw writeError(e, parent, opts);
  }
}

/** Stage a new file for `dest`; nothing exists at `dest` until commit(). */
export function stageFile(dest: string, opts: WriteOptions = {}): StagedFile {
  const path = resolve(dest);
  checkDestination(path, opts);
  const folder = privateFolderIn(dirname(path), `.${basename(path)}.`, opts);
  const tempPath = join(folder, basename(path));
  try {
    closeSync(openSync(tempPath, EXCLUSIVE_CREATE, opts.mode ?? 0o644));
  } catch (e) {
    rmSync(folder, { recursive: true, force: true });
    throw writeError(e, path, opts);
  }
  const discard = () => rmSync(folder, { recursive: true, force: true });
  return {
    tempPath,
    dest: path,
    discard,
    commit() {
      try {
        placeFile(tempPath, path, opts);
      } catch (e) {
        discard();
        throw e instanceof UserError ? e : writeError(e, path, opts);
      }
      discard();
    },
  };
}

function placeFile(from: string, to: string, opts: WriteOptions): void {
  if (opts.force) {
    checkDestination(to, opts);
    return renameSync(from, to);
  }
  try {
    linkSync(from, to);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw new UserError(`${to} already exists.`, `Pass --force to replace it, or choose another ${opts.flag ?? 'path'}.`, 'OUTPUT_EXISTS');
    // A file system without hard links: check, then rename (the only window is this one).
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'EXDEV') throw e;
    checkDestination(to, opts);
    renameSync(from, to);
  }
}

/** Write `data` to a new file at `dest` (exclusively; see the module comment). */
export function writeNewFile(dest: string, data: string | Uint8Array, opts: WriteOptions = {}): string {
  const staged = stageFile(dest, opts);
  try {
    const fd = openSync(staged.tempPath, constants.O_WRONLY | constants.O_NOFOLLOW);
    try {
      writeAll(fd, data);
    } finally {
      closeSync(fd);
    }
  } catch (e) {
    staged.discard();
    throw writeError(e, staged.dest, opts);
  }
  staged.commit();
  return staged.dest;
}

/** Stream into a new file at `dest`; the file appears only when `write` succeeded and the data is on disk. */
/** Copy a file to a new file at `dest` (streamed; exclusively, as writeNewFileStream). */
export async function copyToNewFile(source: string, dest: string, opts: WriteOptions = {}): Promise<string> {
  const { path } = await writeNewFileStream(dest, opts, (out) => pipeline(createReadStream(source), out, { end: false }));
  return path;
}

export async function writeNewFileStream<T>(dest: string, opts: WriteOptions, write: (out: Writable) => Promise<T>): Promise<{ result: T; bytes: number; path: string }> {
  const staged = stageFile(dest, opts);
  let out: ReturnType<typeof createWriteStream> | undefined;
  try {
    out = createWriteStream('', { fd: openSync(staged.tempPath, constants.O_WRONLY | constants.O_NOFOLLOW) });
    const result = await write(out);
    out.end();
    await once(out, 'finish');
    staged.commit();
    return { result, bytes: out.bytesWritten, path: staged.dest };
  } catch (error) {
    out?.destroy();
    staged.discard();
    throw error;
  }
}

export interface NewFolderFile {
  name: string;
  data: string | Uint8Array;
  mode?: number;
}

/** A folder being filled in private (0700, random name) beside its destination; commit() renames it into place. */
export interface StagedFolder {
  readonly dest: string;
  write(file: NewFolderFile): void;
  commit(): void;
  discard(): void;
}

/** Stage a new folder at `dest` (which must not exist); it stays 0700 once in place. */
export function stageFolder(dest: string, opts: WriteOptions = {}): StagedFolder {
  const path = resolve(dest);
  try {
    lstatSync(path);
    throw new UserError(`${path} already exists.`, `Remove it, or pass another ${opts.flag ?? 'folder'}.`, 'OUTPUT_EXISTS');
  } catch (e) {
    if (e instanceof UserError) throw e;
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw writeError(e, path, opts);
  }
  const folder = privateFolderIn(dirname(path), `.${basename(path)}.`, opts);
  const discard = () => rmSync(folder, { recursive: true, force: true });
  return {
    dest: path,
    discard,
    write({ name, data, mode }) {
      const fd = openSync(join(folder, name), EXCLUSIVE_CREATE, mode ?? 0o644);
      try {
        writeAll(fd, data);
      } finally {
        closeSync(fd);
      }
    },
    commit() {
      // rename(2) refuses a symlink, a file or a non-empty folder at the destination (ENOTDIR/ENOTEMPTY).
      try {
        renameSync(folder, path);
      } catch (e) {
        discard();
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'ENOTDIR' || code === 'ENOTEMPTY' || code === 'EEXIST') throw new UserError(`${path} already exists.`, `Remove it, or pass another ${opts.flag ?? 'folder'}.`, 'OUTPUT_EXISTS');
        throw writeError(e, path, opts);
      }
    },
  };
}

function writeAll(fd: number, data: string | Uint8Array): void {
  const bytes = typeof data === 'string' ? Buffer.from(data) : data;
  for (let off = 0; off < bytes.length; ) off += writeSync(fd, bytes, off, bytes.length - off);
}

function writeError(e: unknown, path: string, opts: WriteOptions): UserError {
  if (e instanceof UserError) return e;
  const code = (e as NodeJS.ErrnoException).code;
  const fix = `Check that the folder exists and is writable, or choose another ${opts.flag ?? 'path'}.`;
  const why =
    code === 'EACCES' || code === 'EPERM' ? 'permission denied' : code === 'ENOTDIR' ? 'a part of the path is not a folder' : code === 'ENOSPC' ? 'no space left on the device' : code === 'EROFS' ? 'read-only file system' : (code ?? (e as Error).message);
  return new UserError(`Cannot write ${path}: ${why}.`, fix, 'OUTPUT_UNWRITABLE');
}
