import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createCa, createServerCertificate, type CaMaterial } from './ca.js';

/** The local CA and the broker's server certificate, created on first use under <stateDir>/ca. */
export interface LocalPki {
  ca: CaMaterial;
  server: CaMaterial;
}

export async function ensurePki(stateDir: string): Promise<LocalPki> {
  const dir = join(stateDir, 'ca');
  const names = { caCert: 'ca.pem', caKey: 'ca.key', serverCert: 'server.pem', serverKey: 'server.key' };
  if (!Object.values(names).every((f) => existsSync(join(dir, f)))) {
    // Written to a temporary folder and renamed into place: a crash never leaves half a CA, and of two
    // processes creating it at once (local up, device register) the first rename wins.
    mkdirSync(stateDir, { recursive: true });
    const tmp = mkdtempSync(join(stateDir, '.ca-'));
    const ca = await createCa('iotctl local CA');
    const server = await createServerCertificate(ca, ['localhost', '127.0.0.1']);
    writeSecret(join(tmp, names.caKey), ca.keyPem);
    writeFileSync(join(tmp, names.caCert), ca.certPem);
    writeSecret(join(tmp, names.serverKey), server.keyPem);
    writeFileSync(join(tmp, names.serverCert), server.certPem);
    try {
      if (existsSync(dir) && !existsSync(join(dir, names.caCert))) rmSync(dir, { recursive: true, force: true }); // a partial CA from an older version
      renameSync(tmp, dir);
    } catch (e) {
      rmSync(tmp, { recursive: true, force: true });
      if (!existsSync(join(dir, names.caCert))) throw e; // otherwise another process created it first
    }
  }
  const read = (f: string) => readFileSync(join(dir, f), 'utf8');
  return {
    ca: { certPem: read(names.caCert), keyPem: read(names.caKey) },
    server: { certPem: read(names.serverCert), keyPem: read(names.serverKey) },
  };
}

function writeSecret(file: string, content: string): void {
  writeFileSync(file, content, { mode: 0o600 });
  chmodSync(file, 0o600);
}
