import { readFileSync } from 'node:fs';
import { UserError } from '../ui/errors.js';

/** Read a file the user named; a missing or unreadable one is a user error that names the flag to fix. */
export function readUserFile(file: string, fix: string, what = ''): Buffer {
  try {
    return readFileSync(file);
  } catch (e) {
    throw new UserError(`Cannot read ${what}${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, fix, 'FILE_UNREADABLE');
  }
}

/** A `JSON text | @file` argument, as bytes. */
export function inlineOrFile(arg: string): Buffer {
  return arg.startsWith('@') ? readUserFile(arg.slice(1), 'Check the path after @.', 'the payload file ') : Buffer.from(arg);
}
