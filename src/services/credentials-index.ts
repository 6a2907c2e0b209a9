import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * <stateDir>/credentials.json: thing name -> absolute folder of its credentials, as `device register` wrote
 * them (its --out may be anywhere), so `publish --device` finds them without --credentials.
 */
const credentialsIndex = (stateDir: string) => join(stateDir, 'credentials.json');

export function rememberCredentialsDir(stateDir: string, thingName: string, dir: string): void {
  const index = readCredentialsIndex(stateDir);
  index[thingName] = dir;
  mkdirSync(stateDir, { recursive: true });
  const tmp = `${credentialsIndex(stateDir)}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(index, null, 2));
  renameSync(tmp, credentialsIndex(stateDir));
}

export function readCredentialsIndex(stateDir: string): Record<string, string> {
  try {
    return existsSync(credentialsIndex(stateDir)) ? (JSON.parse(readFileSync(credentialsIndex(stateDir), 'utf8')) as Record<string, string>) : {};
  } catch {
    return {};
  }
}
