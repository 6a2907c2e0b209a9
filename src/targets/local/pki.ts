import { existsSync, readFileSync, mkdirSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { createCa, createServerCertificate, type CaMaterial } from './ca.js';

/** The local CA and the broker's server certificate, created on first use under <stateDir>/ca. */
export interface LocalPki {
  ca: CaMaterial;
  server: CaMaterial;
}

export async function ensurePki(stateDir: string): Promise<LocalPki> {
  const dir = join(stateDir, 'ca');
  const files = { caCert: join(dir, 'ca.pem'), caKey: join(dir, 'ca.key'), serverCert: join(dir, 'server.pem'), serverKey: join(dir, 'server.key') };
  if (!existsSync(files.caCert) || !existsSync(files.caKey)) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const ca = await createCa('iotctl local CA');
    const server = await createServerCertificate(ca, ['localhost', '127.0.0.1']);
    writeSecret(files.caKey, ca.keyPem);
    writeFileSync(files.caCert, ca.certPem);
    writeSecret(files.serverKey, server.keyPem);
    writeFileSync(files.serverCert, server.certPem);
  }
  const read = (f: string) => readFileSync(f, 'utf8');
  return {
    ca: { certPem: read(files.caCert), keyPem: read(files.caKey) },
    server: { certPem: read(files.serverCert), keyPem: read(files.serverKey) },
  };
}

function writeSecret(file: string, content: string): void {
  writeFileSync(file, content, { mode: 0o600 });
  chmodSync(file, 0o600);
}
