import { join } from 'node:path';
import { readUserFile, writeNewFile } from './files.js';

/**
 * <stateDir>/credentials.json: thing name -> absolute folder of its credentials, as `device register` wrote
 * them (its --out may be anywhere), so `publish --device` finds them without --credentials.
 */
const credentialsIndex = (stateDir: string) => join(stateDir, 'credentials.json');

export function rememberCredentialsDir(stateDir: string, thingName: string, dir: string): void {
  const index = readCredentialsIndex(stateDir);
  index[thingName] = dir;
  // Replaced by rename from a private temporary folder: never written through a link someone planted.
  writeNewFile(credentialsIndex(stateDir), JSON.stringify(index, null, 2), { force: true, mode: 0o600, parentMode: 0o700, flag: '--state-dir' });
}

export function readCredentialsIndex(stateDir: string): Record<string, string> {
  try {
    return JSON.parse(readUserFile(credentialsIndex(stateDir), '').toString('utf8')) as Record<string, string>;
  } catch {
    return {};
  }
}
