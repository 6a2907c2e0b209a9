import 'reflect-metadata';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as x509 from '@peculiar/x509';
import { execFileSync } from 'node:child_process';
import { createHash, createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tls from 'node:tls';
import {
  certificateIdOf,
  createCa,
  createServerCertificate,
  issueDeviceCertificate,
  LocalCa,
  type CaMaterial,
} from '../../src/targets/local/ca.js';
import { UserError } from '../../src/ui/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'iotctl-ca-test-'));
const file = (name: string, content: string) => {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
};
const openssl = (...args: string[]) => execFileSync('openssl', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

/** Runs `fn`, expecting a UserError with this code; returns it for more checks. */
async function userError(fn: () => Promise<unknown> | unknown, code: string): Promise<UserError> {
  try {
    await fn();
  } catch (error) {
    assert.instance(error, UserError);
    assert.is((error as UserError).code, code, (error as Error).message);
    return error as UserError;
  }
  throw new assert.Assertion({ message: `expected a UserError ${code}`, operator: 'throws', generated: false, expects: code, actual: 'no error' });
}

let ca: CaMaterial;
let local: LocalCa;
let caCert: X509Certificate;
let server: CaMaterial;

/** A CSR made the way a device would, with OpenSSL. */
function opensslCsr(name: string, keyArgs = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256']): { csrPem: string; keyPem: string } {
  const keyOut = join(dir, `${name}.key`);
  const csrOut = join(dir, `${name}.csr`);
  openssl('req', '-new', ...keyArgs, '-nodes', '-keyout', keyOut, '-subj', `/CN=${name}-on-device`, '-out', csrOut);
  return { csrPem: readFileSync(csrOut, 'utf8'), keyPem: readFileSync(keyOut, 'utf8') };
}

test.before(async () => {
  ca = await createCa('iotctl test CA');
  local = await LocalCa.load(ca);
  caCert = new X509Certificate(ca.certPem);
  server = await createServerCertificate(ca, ['localhost', '127.0.0.1']);
});

test.after(() => rmSync(dir, { recursive: true, force: true }));

test('createCa: a self-signed ECDSA P-256 CA that may only sign end-entity certificates', () => {
  assert.ok(caCert.ca);
  assert.is(caCert.subject, 'CN=iotctl test CA');
  assert.is(caCert.issuer, caCert.subject);
  assert.ok(caCert.verify(caCert.publicKey));
  assert.is(caCert.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
  assert.match(ca.keyPem, /^-----BEGIN PRIVATE KEY-----\n/);
  assert.equal(createPublicKey(createPrivateKey(ca.keyPem)).export({ type: 'spki', format: 'der' }), caCert.publicKey.export({ type: 'spki', format: 'der' }));
  const text = openssl('x509', '-in', file('ca.pem', ca.certPem), '-noout', '-text');
  assert.match(text, /CA:TRUE, pathlen:0/);
  assert.match(text, /Certificate Sign, CRL Sign/);
});

test('a device certificate verifies against the CA and carries the expected fields', async () => {
  const issued = await local.issue({ thingName: 'sensor-1' });
  const cert = new X509Certificate(issued.certPem);
  assert.ok(cert.verify(caCert.publicKey));
  assert.ok(cert.checkIssued(caCert));
  assert.not.ok(cert.ca);
  assert.is(cert.subject, 'CN=sensor-1');
  assert.is(issued.subject, 'CN=sensor-1');
  assert.equal(cert.keyUsage, ['1.3.6.1.5.5.7.3.2']); // node lists the extended key usages: clientAuth
  const text = openssl('x509', '-in', file('device.pem', issued.certPem), '-noout', '-text');
  assert.match(text, /X509v3 Key Usage: critical\n\s+Digital Signature\n/);
  assert.match(text, /TLS Web Client Authentication/);
  assert.match(text, /CA:FALSE/);

  assert.match(issued.certificateId, /^[0-9a-f]{64}$/);
  assert.is(issued.certificateId, createHash('sha256').update(cert.raw).digest('hex'));
  assert.is(certificateIdOf(issued.certPem), issued.certificateId);
  assert.is(issued.fingerprint, `SHA256:${cert.fingerprint256}`);
  assert.is(issued.notBefore.getTime(), new Date(cert.validFrom).getTime());
  assert.is(issued.notAfter.getTime(), new Date(cert.validTo).getTime());
  assert.ok(issued.notBefore.getTime() <= Date.now());
  assert.is(Math.round((issued.notAfter.getTime() - Date.now()) / 86_400_000), 365);

  // The generated key: PKCS#8 PEM, P-256, and the private half of the certified public key.
  assert.match(issued.keyPem!, /^-----BEGIN PRIVATE KEY-----\n/);
  const key = createPrivateKey(issued.keyPem!);
  assert.is(key.asymmetricKeyDetails?.namedCurve, 'prime256v1');
  assert.equal(createPublicKey(key).export({ type: 'spki', format: 'der' }), cert.publicKey.export({ type: 'spki', format: 'der' }));
});

test('subject and authority key identifiers chain to the CA', async () => {
  const issued = new x509.X509Certificate((await local.issue({ thingName: 'sensor-ski' })).certPem);
  const caSki = new x509.X509Certificate(ca.certPem).getExtension(x509.SubjectKeyIdentifierExtension)!.keyId;
  assert.is(issued.getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId, caSki);
  const ski = issued.getExtension(x509.SubjectKeyIdentifierExtension)!.keyId;
  assert.is(ski, Buffer.from(await issued.publicKey.getKeyIdentifier()).toString('hex'));
});

test('openssl verify accepts device and server certificates', async () => {
  const caFile = file('ca.pem', ca.certPem);
  const device = file('device-v.pem', (await local.issue({ thingName: 'sensor-2' })).certPem);
  const serverFile = file('server.pem', server.certPem);
  assert.is(openssl('verify', '-CAfile', caFile, device).trim(), `${device}: OK`);
  assert.is(openssl('verify', '-CAfile', caFile, '-purpose', 'sslclient', device).trim(), `${device}: OK`);
  assert.is(openssl('verify', '-CAfile', caFile, '-purpose', 'sslserver', serverFile).trim(), `${serverFile}: OK`);
  // And a CA that did not sign it does not.
  const otherCa = file('other-ca.pem', (await createCa('other')).certPem);
  assert.throws(() => openssl('verify', '-CAfile', otherCa, device));
});

test('the server certificate names localhost and 127.0.0.1', () => {
  const cert = new X509Certificate(server.certPem);
  assert.is(cert.subjectAltName, 'DNS:localhost, IP Address:127.0.0.1');
  assert.is(cert.checkHost('localhost'), 'localhost');
  assert.is(cert.checkIP('127.0.0.1'), '127.0.0.1');
  assert.is(cert.checkHost('example.com'), undefined);
  assert.equal(cert.keyUsage, ['1.3.6.1.5.5.7.3.1']); // serverAuth
  assert.ok(cert.checkIssued(caCert));
  assert.ok(cert.checkPrivateKey(createPrivateKey(server.keyPem)));
  assert.is(local.serverCertificate(['::1']).certPem.length > 0, true);
  assert.is(new X509Certificate(local.serverCertificate(['broker.local', '::1']).certPem).subjectAltName, 'DNS:broker.local, IP Address:0:0:0:0:0:0:0:1');
});

test('CSR flow: an OpenSSL P-256 request is certified, the key stays on the device', async () => {
  const device = opensslCsr('csr-device');
  const issued = await local.issue({ thingName: 'sensor-csr', csrPem: device.csrPem });
  assert.is(issued.keyPem, undefined);
  assert.not.ok('keyPem' in issued);
  const cert = new X509Certificate(issued.certPem);
  assert.is(cert.subject, 'CN=sensor-csr'); // the thing name, not the CSR's subject
  assert.ok(cert.checkIssued(caCert));
  assert.ok(cert.verify(caCert.publicKey));
  assert.ok(cert.checkPrivateKey(createPrivateKey(device.keyPem)));
  const certFile = file('csr-device.pem', issued.certPem);
  assert.is(openssl('verify', '-CAfile', file('ca.pem', ca.certPem), certFile).trim(), `${certFile}: OK`);
});

test('CSR flow: RSA 2048 is accepted, RSA 1024 is not', async () => {
  const rsa = opensslCsr('csr-rsa', ['-newkey', 'rsa:2048']);
  const cert = new X509Certificate((await local.issue({ thingName: 'rsa-device', csrPem: rsa.csrPem })).certPem);
  assert.ok(cert.checkPrivateKey(createPrivateKey(rsa.keyPem)));
  const weak = opensslCsr('csr-weak', ['-newkey', 'rsa:1024']);
  const error = await userError(() => local.issue({ thingName: 'weak', csrPem: weak.csrPem }), 'CSR_KEY_UNSUPPORTED');
  assert.match(error.message, /RSASSA-PKCS1-v1_5 1024 bits|1024 bits/);
});

test('invalid CSRs are refused with a UserError', async () => {
  const good = opensslCsr('csr-tamper');
  const der = Buffer.from(good.csrPem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
  const pem = (bytes: Buffer) => `-----BEGIN CERTIFICATE REQUEST-----\n${bytes.toString('base64').replace(/.{1,64}/g, '$&\n')}-----END CERTIFICATE REQUEST-----\n`;

  const garbage = await userError(() => local.issue({ thingName: 't', csrPem: 'hello, world' }), 'CSR_INVALID');
  assert.match(garbage.message, /not a PEM certificate signing request/);
  assert.match(garbage.hint ?? '', /openssl req -new/);
  await userError(() => local.issue({ thingName: 't', csrPem: pem(Buffer.from('not DER at all')) }), 'CSR_INVALID');
  await userError(() => local.issue({ thingName: 't', csrPem: pem(der.subarray(0, der.length - 20)) }), 'CSR_INVALID');
  await userError(() => local.issue({ thingName: 't', csrPem: ca.certPem }), 'CSR_INVALID');

  // Flip a bit in the signature (the last bytes of the DER).
  const badSignature = Buffer.from(der);
  badSignature[badSignature.length - 3]! ^= 0x01;
  const error = await userError(() => local.issue({ thingName: 't', csrPem: pem(badSignature) }), 'CSR_SIGNATURE_INVALID');
  assert.match(error.message, /signature does not verify/);

  // Change the signed content (a letter of the subject CN): the signature no longer covers it.
  const at = der.indexOf(Buffer.from('csr-tamper-on-device'));
  const badSubject = Buffer.from(der);
  badSubject[at] = 'x'.charCodeAt(0);
  await userError(() => local.issue({ thingName: 't', csrPem: pem(badSubject) }), 'CSR_SIGNATURE_INVALID');
});

test('issue options are checked', async () => {
  await userError(() => local.issue({ thingName: '' }), 'THING_NAME_REQUIRED');
  for (const validDays of [0, -1, 1.5, 40_000]) await userError(() => local.issue({ thingName: 't', validDays }), 'VALIDITY_INVALID');
  const short = await local.issue({ thingName: 't', validDays: 30 });
  assert.is(Math.round((short.notAfter.getTime() - Date.now()) / 86_400_000), 30);
  // Far dates switch from UTCTime to GeneralizedTime; OpenSSL and node read both.
  const long = await local.issue({ thingName: 't', validDays: 36_500 });
  assert.is(new Date(new X509Certificate(long.certPem).validTo).getTime(), long.notAfter.getTime());
  assert.match(openssl('x509', '-in', file('long.pem', long.certPem), '-noout', '-enddate'), /21\d\d GMT/);
});

test('a thing name is one common name, whatever it contains', async () => {
  const issued = await local.issue({ thingName: 'a,O=evil+CN=x é' });
  assert.equal(new x509.X509Certificate(issued.certPem).subjectName.toJSON(), [{ CN: ['a,O=evil+CN=x é'] }]);
});

test('serial numbers are unique and positive', async () => {
  const serials = new Set<string>();
  for (let i = 0; i < 200; i++) {
    const serial = new X509Certificate((await local.issue({ thingName: `s${i}` })).certPem).serialNumber;
    assert.ok(/^[1-7][0-9A-F]{31}$/.test(serial) || /^0[1-9A-F][0-9A-F]{30}$/.test(serial), serial);
    serials.add(serial);
  }
  assert.is(serials.size, 200);
});

test('generated keys always parse and match, including short private scalars', async () => {
  // About 1 in 256 P-256 scalars has a leading zero byte; 1500 keys make hitting that near certain.
  for (let i = 0; i < 1500; i++) {
    const issued = await local.issue({ thingName: `k${i}` });
    const key = createPrivateKey(issued.keyPem!);
    const cert = new X509Certificate(issued.certPem);
    if (!createPublicKey(key).export({ type: 'spki', format: 'der' }).equals(cert.publicKey.export({ type: 'spki', format: 'der' }))) {
      assert.unreachable(`key ${i} does not match its certificate`);
    }
  }
});

test('loading a CA checks the material', async () => {
  const other = await createCa('other');
  await userError(() => LocalCa.load({ certPem: ca.certPem, keyPem: other.keyPem }), 'CA_KEY_MISMATCH');
  await userError(() => LocalCa.load({ certPem: 'nope', keyPem: ca.keyPem }), 'CA_INVALID');
  await userError(() => LocalCa.load({ certPem: ca.certPem, keyPem: 'nope' }), 'CA_INVALID');
  const device = await local.issue({ thingName: 'not-a-ca' });
  await userError(() => LocalCa.load({ certPem: device.certPem, keyPem: device.keyPem! }), 'CA_INVALID');
  await userError(() => certificateIdOf('nope'), 'CERT_INVALID');
});

test('issueDeviceCertificate works from the CA material alone', async () => {
  const issued = await issueDeviceCertificate(ca, { thingName: 'via-function' });
  assert.ok(new X509Certificate(issued.certPem).checkIssued(caCert));
  const again = await issueDeviceCertificate({ ...ca }, { thingName: 'via-function-2' });
  assert.ok(new X509Certificate(again.certPem).verify(caCert.publicKey));
});

interface HandshakeResult {
  /** The server's greeting: `hello <client CN>`, or `unauthorized <reason>` when it was told not to reject. */
  greeting?: string;
  /** What the server reported about a client whose handshake it did not complete. */
  serverError?: string;
}

/** Starts a mutual-TLS server like the broker's (requestCert, rejectUnauthorized, the CA) and connects one client. */
async function tlsHandshake(client: { key: string; cert: string }, opts: { host?: string; rejectUnauthorized?: boolean } = {}): Promise<HandshakeResult> {
  const host = opts.host ?? 'localhost';
  const tlsServer = tls.createServer(
    { key: server.keyPem, cert: server.certPem, ca: ca.certPem, requestCert: true, rejectUnauthorized: opts.rejectUnauthorized ?? true },
    (socket) => socket.end(socket.authorized ? `hello ${socket.getPeerCertificate().subject.CN}` : `unauthorized ${socket.authorizationError}`),
  );
  const serverError = new Promise<string>((resolve) => tlsServer.once('tlsClientError', (error) => resolve(error.message)));
  await new Promise<void>((resolve) => tlsServer.listen(0, '127.0.0.1', resolve));
  const { port } = tlsServer.address() as AddressInfo;
  try {
    const greeting = await new Promise<string | undefined>((resolve) => {
      let received = '';
      // The client checks the server too: its name (or IP) must be in the server certificate.
      const socket = tls.connect({ host, port, ca: ca.certPem, key: client.key, cert: client.cert, servername: host === '127.0.0.1' ? undefined : host });
      socket.on('data', (d) => (received += d));
      socket.on('error', () => resolve(undefined));
      socket.on('close', () => resolve(received || undefined));
    });
    if (greeting) return { greeting };
    const timeout = new Promise<string>((resolve) => setTimeout(resolve, 2000, 'no server-side error reported').unref());
    return { serverError: await Promise.race([serverError, timeout]) };
  } finally {
    await new Promise((resolve) => tlsServer.close(resolve));
  }
}

test('TLS: the server accepts a device certificate from the CA (generated key and CSR key)', async () => {
  const generated = await local.issue({ thingName: 'tls-device' });
  assert.equal(await tlsHandshake({ key: generated.keyPem!, cert: generated.certPem }), { greeting: 'hello tls-device' });
  const onDevice = opensslCsr('tls-csr');
  const fromCsr = await local.issue({ thingName: 'tls-csr-device', csrPem: onDevice.csrPem });
  assert.equal(await tlsHandshake({ key: onDevice.keyPem, cert: fromCsr.certPem }, { host: '127.0.0.1' }), { greeting: 'hello tls-csr-device' });
});

test('TLS: the server refuses a device certificate from another CA', async () => {
  const stranger = await (await LocalCa.load(await createCa('iotctl test CA'))).issue({ thingName: 'tls-device' });
  // Node ends the connection right after the handshake; the server reports it as a client error.
  const refused = await tlsHandshake({ key: stranger.keyPem!, cert: stranger.certPem });
  assert.equal(refused, { serverError: 'socket hang up' });
  // Why: the same server, told not to reject, shows the verification failure.
  const inspected = await tlsHandshake({ key: stranger.keyPem!, cert: stranger.certPem }, { rejectUnauthorized: false });
  assert.match(inspected.greeting ?? '', /^unauthorized (UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT|CERT_SIGNATURE_FAILURE)$/);
});

test('issuance rate (printed, not asserted)', async () => {
  const rate = async (label: string, count: number, concurrency: number, issue: (i: number) => Promise<unknown>) => {
    let next = 0;
    const started = performance.now();
    await Promise.all(Array.from({ length: concurrency }, async () => {
      while (next < count) await issue(next++);
    }));
    const perSecond = count / ((performance.now() - started) / 1000);
    console.log(`  ${label}: ${Math.round(perSecond)} certificates/s (${count} issued, concurrency ${concurrency})`);
  };
  await rate('generated key', 2000, 1, (i) => local.issue({ thingName: `bench-${i}` }));
  await rate('generated key', 2000, 16, (i) => local.issue({ thingName: `bench-${i}` }));
  await rate('generated key via issueDeviceCertificate', 2000, 1, (i) => issueDeviceCertificate(ca, { thingName: `bench-${i}` }));
  const csr = opensslCsr('bench-csr').csrPem;
  await rate('from CSR', 500, 1, (i) => local.issue({ thingName: `bench-csr-${i}`, csrPem: csr }));
});

test.run();
