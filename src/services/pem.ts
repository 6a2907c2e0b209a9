import { X509Certificate } from 'node:crypto';
import { UserError } from '../ui/errors.js';

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([A-Za-z0-9+/=\r\n]+?)-----END \1-----/g;

/**
 * The certificates of a PEM CA file (one or a bundle; comment lines between blocks allowed), re-encoded as
 * PEM: only parsed certificates are ever written out, so a wrong path (a key, /etc/shadow) cannot be copied.
 * Errors name the file and what was expected, never its content.
 */
export function parseCaBundle(bytes: Buffer, file: string, fix: string): string {
  const text = bytes.toString('latin1');
  const certs: string[] = [];
  for (const [, label, body] of text.matchAll(PEM_BLOCK)) {
    if (label!.includes('PRIVATE KEY')) throw new UserError(`${file} contains a private key; a CA file must hold certificates only.`, fix, 'CA_FILE_INVALID');
    if (label !== 'CERTIFICATE') continue;
    try {
      certs.push(new X509Certificate(Buffer.from(body!.replace(/\s+/g, ''), 'base64')).toString());
    } catch {
      throw new UserError(`${file} has a CERTIFICATE block that is not a valid X.509 certificate.`, fix, 'CA_FILE_INVALID');
    }
  }
  if (!certs.length) throw new UserError(`${file} is not a PEM certificate (no "-----BEGIN CERTIFICATE-----" block).`, fix, 'CA_FILE_INVALID');
  return certs.map((c) => (c.endsWith('\n') ? c : `${c}\n`)).join('');
}
