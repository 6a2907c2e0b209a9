import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeJsonAtomic } from './daemon-info.js';

/**
 * <stateDir>/credentials.json: thing name -> absolute folder of its credentials, as `device register` wrote
 * them (its --out may be anywhere), so `publish --device` finds them without --credentials.
 */
const credentialsIndex = (stateDir: string) => join(stateDir, 'credentials.json');

export function rememberCredentialsDir(stateDir: string, thingName: string, dir: string): void {
  const index = readCredentialsIndex(stateDir);
  index[thingName] = dir;
  writeJsonAtomic(credentialsIndex(stateDir), index);
}

export function readCredentialsIndex(stateDir: string): Record<string, string> {
  try {
    return existsSync(credentialsIndex(stateDir)) ? (JSON.parse(readFileSync(credentialsIndex(stateDir), 'utf8')) as Record<string, string>) : {};
  } catch {
    return {};
  }
}
