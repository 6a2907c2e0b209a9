/**
 * The local certificate authority: a self-signed ECDSA P-256 CA that issues the broker's TLS server
 * certificate and device (TLS client) certificates, as AWS IoT issues them from its own CA.
 *
 * Issuing sits on the device-registration hot path (bench target: 500 registrations/s, key generation
 * included), which shapes the implementation:
 * - `LocalCa.load` imports and checks the CA key once and precomputes everything that depends only on
 *   the CA (issuer name, authority key identifier, constant extensions).
 * - End-entity certificates are assembled from DER pieces and signed with node:crypto. @peculiar/x509
 *   builds each certificate through a generic ASN.1 serializer that costs ~4 ms per certificate, more
 *   than the whole budget; it still creates the CA and parses and verifies CSRs, where speed is moot.
 * - Device key pairs come from an ECDH context (~0.05 ms; a P-256 key pair is the same for ECDH and
 *   ECDSA), and their PKCS#8/SPKI encodings are fixed templates: OpenSSL's key encoders cost ~0.25 ms
 *   per export.
 */
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import {
  createECDH,
  createHash,
  createPrivateKey,
  randomBytes,
  sign,
  verify,
  webcrypto,
  X509Certificate as NodeX509Certificate,
  type KeyObject,
} from 'node:crypto';
import { isIP } from 'node:net';
import { UserError } from '../../ui/errors.js';

x509.cryptoProvider.set(webcrypto);

/** A certificate and its private key, both PEM (the key PKCS#8). */
export interface CaMaterial {
  certPem: string;
  keyPem: string;
}

export interface IssuedCertificate {
  certPem: string;
  /** Only when iotctl generated the key pair; with a CSR the key never leaves the device. */
  keyPem?: string;
  /** 64 lowercase hex characters: the SHA-256 of the DER certificate, as AWS IoT certificate ids are. */
  certificateId: string;
  /** `SHA256:AA:BB:...`, the same digest in the usual fingerprint notation. */
  fingerprint: string;
  notBefore: Date;
  notAfter: Date;
  /** e.g. `CN=sensor-1` */
  subject: string;
}

export interface IssueOptions {
  thingName: string;
  /** A PKCS#10 request made on the device. Its public key is certified; its subject and extensions are ignored. */
  csrPem?: string;
  /** Validity from now; default 365 days. */
  validDays?: number;
  /** Validity from now in milliseconds (whole seconds; overrides validDays): short ones make expiry testable. */
  validityMs?: number;
}

const DAY_MS = 86_400_000;
/** Certificates start a little in the past so that a device with a slow clock accepts them at once. */
const BACKDATE_MS = 5 * 60_000;
const CA_VALID_DAYS = 3650;
/** The longest validity Apple platforms accept for a TLS server certificate. */
const SERVER_VALID_DAYS = 825;
const DEVICE_VALID_DAYS = 365;
const MAX_VALID_DAYS = 36_500;
const REPLACE_CA_HINT = 'Delete the local CA files (ca.pem and ca.key) to have iotctl create a new CA.';

// ---------------------------------------------------------------------------------------------------
// Minimal DER: just what an X.509 v3 end-entity certificate needs.

function derLength(length: number): Buffer {
  if (length < 0x80) return Buffer.from([length]);
  const bytes: number[] = [];
  for (let n = length; n > 0; n = Math.floor(n / 256)) bytes.unshift(n & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function tlv(tag: number, ...contents: Uint8Array[]): Buffer {
  const body = Buffer.concat(contents);
  return Buffer.concat([Buffer.from([tag]), derLength(body.length), body]);
}

const seq = (...contents: Uint8Array[]) => tlv(0x30, ...contents);
const octetString = (...contents: Uint8Array[]) => tlv(0x04, ...contents);
const bitString = (bytes: Uint8Array) => tlv(0x03, Buffer.from([0]), bytes);
const explicit = (n: number, ...contents: Uint8Array[]) => tlv(0xa0 | n, ...contents);

function oid(dotted: string): Buffer {
  const [a, b, ...rest] = dotted.split('.').map(Number) as [number, number, ...number[]];
  const bytes = [40 * a + b];
  for (const arc of rest) {
    const base128 = [arc & 0x7f];
    for (let n = Math.floor(arc / 128); n > 0; n = Math.floor(n / 128)) base128.unshift(0x80 | (n & 0x7f));
    bytes.push(...base128);
  }
  return tlv(0x06, Buffer.from(bytes));
}

/** RFC 5280: UTCTime through 2049, GeneralizedTime from 2050; always whole seconds, always UTC. */
function derTime(date: Date): Buffer {
  const iso = date.toISOString(); // 2025-01-31T12:34:56.789Z
  const digits = iso.slice(0, 19).replace(/[-T:]/g, '') + 'Z'; // 20250131123456Z
  const year = date.getUTCFullYear();
  return year >= 1950 && year < 2050 ? tlv(0x17, Buffer.from(digits.slice(2), 'latin1')) : tlv(0x18, Buffer.from(digits, 'latin1'));
}

function extension(id: Buffer, critical: boolean, value: Uint8Array): Buffer {
  return critical ? seq(id, tlv(0x01, Buffer.from([0xff])), octetString(value)) : seq(id, octetString(value));
}

interface Tlv {
  tag: number;
  start: number;
  contentStart: number;
  end: number;
}

function readTlv(der: Uint8Array, offset: number): Tlv {
  if (offset + 2 > der.length) throw new Error('truncated DER');
  const tag = der[offset]!;
  let length = der[offset + 1]!;
  let p = offset + 2;
  if (length & 0x80) {
    const count = length & 0x7f;
    if (count === 0 || count > 4) throw new Error('unsupported DER length');
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + der[p++]!;
  }
  if (p + length > der.length) throw new Error('truncated DER');
  return { tag, start: offset, contentStart: p, end: p + length };
}

function childrenOf(der: Uint8Array, parent: Tlv): Tlv[] {
  const children: Tlv[] = [];
  for (let p = parent.contentStart; p < parent.end; ) {
    const child = readTlv(der, p);
    children.push(child);
    p = child.end;
  }
  return children;
}

/** The DER of a certificate's subject Name, byte for byte (it becomes the issuer of what we sign). */
function subjectNameDer(certDer: Uint8Array): Buffer {
  const tbs = childrenOf(certDer, readTlv(certDer, 0))[0]!;
  const fields = childrenOf(certDer, tbs);
  const first = fields[0]!.tag === 0xa0 ? 1 : 0; // skip the optional [0] version
  const subject = fields[first + 4]!; // serialNumber, signature, issuer, validity, subject
  return Buffer.from(certDer.subarray(subject.start, subject.end));
}

/** RFC 5280 key identifier: SHA-1 of the subjectPublicKey bits of a SubjectPublicKeyInfo. */
function keyIdentifier(spki: Uint8Array): Buffer {
  const bits = childrenOf(spki, readTlv(spki, 0))[1]!;
  return createHash('sha1').update(spki.subarray(bits.contentStart + 1, bits.end)).digest();
}

const OID = {
  commonName: oid('2.5.4.3'),
  basicConstraints: oid('2.5.29.19'),
  keyUsage: oid('2.5.29.15'),
  extKeyUsage: oid('2.5.29.37'),
  subjectKeyIdentifier: oid('2.5.29.14'),
  authorityKeyIdentifier: oid('2.5.29.35'),
  subjectAltName: oid('2.5.29.17'),
  clientAuth: oid('1.3.6.1.5.5.7.3.2'),
  serverAuth: oid('1.3.6.1.5.5.7.3.1'),
};

/** Extensions every end-entity certificate carries, whatever the CA. */
const END_ENTITY = {
  notCa: extension(OID.basicConstraints, true, seq()),
  // KeyUsage BIT STRING with only digitalSignature (bit 0) set: 7 unused bits, 0x80.
  digitalSignature: extension(OID.keyUsage, true, tlv(0x03, Buffer.from([0x07, 0x80]))),
  clientAuth: extension(OID.extKeyUsage, false, seq(OID.clientAuth)),
  serverAuth: extension(OID.extKeyUsage, false, seq(OID.serverAuth)),
};

/** The signature algorithm (X.509 AlgorithmIdentifier and node:crypto digest) for each CA curve. */
const SIGNATURE_FOR_CURVE: Record<string, { algorithm: Buffer; digest: string }> = {
  prime256v1: { algorithm: seq(oid('1.2.840.10045.4.3.2')), digest: 'sha256' },
  secp384r1: { algorithm: seq(oid('1.2.840.10045.4.3.3')), digest: 'sha384' },
  secp521r1: { algorithm: seq(oid('1.2.840.10045.4.3.4')), digest: 'sha512' },
};

// ---------------------------------------------------------------------------------------------------
// Keys and encodings

function toPem(der: Uint8Array, label: string): string {
  const base64 = Buffer.from(der).toString('base64');
  return `-----BEGIN ${label}-----\n${base64.replace(/.{1,64}/g, '$&\n')}-----END ${label}-----\n`;
}

function fromPem(pem: string, label: string): Buffer | undefined {
  const m = new RegExp(`-----BEGIN ${label}-----([A-Za-z0-9+/=\\s]+)-----END ${label}-----`).exec(pem);
  return m ? Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64') : undefined;
}

// id-ecPublicKey with the prime256v1 curve, as the AlgorithmIdentifier of P-256 SPKI and PKCS#8.
const P256_ALGORITHM = seq(oid('1.2.840.10045.2.1'), oid('1.2.840.10045.3.1.7'));

/**
 * A fresh ECDSA P-256 key pair: the PKCS#8 PEM of the private key (RFC 5915 ECPrivateKey with its public
 * key, exactly as `openssl genpkey` writes it) and the SPKI DER of the public key.
 */
function newP256KeyPair(): { keyPem: string; spki: Buffer } {
  const ecdh = createECDH('prime256v1');
  const point = ecdh.generateKeys(); // uncompressed: 0x04 || X || Y
  const scalar = ecdh.getPrivateKey();
  const privateKey = Buffer.concat([Buffer.alloc(32 - scalar.length), scalar]); // fixed width, left-padded
  const ecPrivateKey = seq(tlv(0x02, Buffer.from([1])), octetString(privateKey), explicit(1, bitString(point)));
  const pkcs8 = seq(tlv(0x02, Buffer.from([0])), P256_ALGORITHM, octetString(ecPrivateKey));
  return { keyPem: toPem(pkcs8, 'PRIVATE KEY'), spki: seq(P256_ALGORITHM, bitString(point)) };
}

/** A positive 128-bit serial number (RFC 5280: up to 20 octets, unpredictable). */
function randomSerial(): Buffer {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0]! & 0x7f) | 0x01; // positive, and no leading zero octet that DER would forbid
  return bytes;
}

function validity(ms: number): { notBefore: Date; notAfter: Date } {
  const now = Math.floor(Date.now() / 1000) * 1000; // certificates carry whole seconds
  return { notBefore: new Date(now - BACKDATE_MS), notAfter: new Date(now + Math.ceil(ms / 1000) * 1000) };
}

function checkValidityMs(ms: number): void {
  if (!Number.isFinite(ms) || ms < 1000 || ms > MAX_VALID_DAYS * DAY_MS) {
    throw new UserError(`Certificate validity must be from 1 second to ${MAX_VALID_DAYS} days (got ${ms} ms).`, 'Write it as a duration such as 1h, 30d or 1y.', 'VALIDITY_INVALID');
  }
}

function checkDays(days: number): void {
  if (!Number.isInteger(days) || days < 1 || days > MAX_VALID_DAYS) {
    throw new UserError(`Certificate validity must be a whole number of days from 1 to ${MAX_VALID_DAYS} (got ${days}).`, undefined, 'VALIDITY_INVALID');
  }
}

function digestOf(der: Uint8Array): { certificateId: string; fingerprint: string } {
  const hex = createHash('sha256').update(der).digest('hex');
  return { certificateId: hex, fingerprint: `SHA256:${hex.toUpperCase().replace(/(..)(?!$)/g, '$1:')}` };
}

/** The AWS IoT style certificate id (SHA-256 of the DER, lowercase hex) of a PEM certificate. */
export function certificateIdOf(certPem: string): string {
  let der: Buffer;
  try {
    der = new NodeX509Certificate(certPem).raw;
  } catch {
    throw new UserError('That is not a PEM X.509 certificate.', 'Pass the certificate as PEM text ("-----BEGIN CERTIFICATE-----...").', 'CERT_INVALID');
  }
  return digestOf(der).certificateId;
}

// ---------------------------------------------------------------------------------------------------
// Certificate signing requests

const CSR_HINT =
  'Create one on the device, e.g. `openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout device.key -subj "/CN=<thing>" -out device.csr`, and pass the PEM file.';

/** What a CSR's key must be for us to certify it: what AWS IoT accepts. */
function checkCsrKey(key: x509.PublicKey): void {
  const algorithm = key.algorithm as Partial<webcrypto.EcKeyAlgorithm & webcrypto.RsaHashedKeyAlgorithm>;
  if (algorithm.name === 'ECDSA' && ['P-256', 'P-384', 'P-521'].includes(algorithm.namedCurve ?? '')) return;
  if (algorithm.name?.startsWith('RSA') && (algorithm.modulusLength ?? 0) >= 2048) return;
  const described = [algorithm.name ?? 'an unknown algorithm', algorithm.namedCurve, algorithm.modulusLength && `${algorithm.modulusLength} bits`];
  throw new UserError(
    `The CSR's public key (${described.filter(Boolean).join(' ')}) is not accepted.`,
    'Use an ECDSA P-256 (or P-384/P-521) key, or RSA with at least 2048 bits.',
    'CSR_KEY_UNSUPPORTED',
  );
}

/** Parses a PEM CSR and checks that its signer holds the private key; returns the SPKI DER to certify. */
async function publicKeyOfCsr(csrPem: string): Promise<Buffer> {
  const der = fromPem(csrPem, 'CERTIFICATE REQUEST') ?? fromPem(csrPem, 'NEW CERTIFICATE REQUEST');
  if (!der) throw new UserError('The CSR is not a PEM certificate signing request ("-----BEGIN CERTIFICATE REQUEST-----").', CSR_HINT, 'CSR_INVALID');
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(der);
    checkCsrKey(csr.publicKey); // parses the key, so a broken one fails here
  } catch (error) {
    if (error instanceof UserError) throw error;
    throw new UserError(`The CSR is malformed: ${(error as Error).message}`, CSR_HINT, 'CSR_INVALID');
  }
  const verified = await csr.verify().catch(() => false);
  if (!verified) {
    throw new UserError(
      "The CSR's signature does not verify: it was altered, or not signed with the key it carries.",
      'Generate a fresh CSR on the device and send it unmodified.',
      'CSR_SIGNATURE_INVALID',
    );
  }
  return Buffer.from(csr.publicKey.rawData);
}

/** Checks a user's CSR as AWS IoT would (PEM, accepted key, valid self-signature) before any call is made. */
export async function checkCsr(csrPem: string): Promise<void> {
  await publicKeyOfCsr(csrPem);
}

/**
 * A fresh ECDSA P-256 key pair and a PKCS#10 request (subject CN=<commonName>) signed with it: what the aws
 * target sends to CreateCertificateFromCsr, so that the private key never leaves this machine.
 */
export function newP256KeyAndCsr(commonName: string): { keyPem: string; csrPem: string } {
  const { keyPem, spki } = newP256KeyPair();
  const subject = seq(tlv(0x31, seq(OID.commonName, tlv(0x0c, Buffer.from(commonName, 'utf8')))));
  const info = seq(tlv(0x02, Buffer.from([0])), subject, spki, tlv(0xa0)); // version 0, no attributes
  const signature = SIGNATURE_FOR_CURVE.prime256v1!;
  const der = seq(info, signature.algorithm, bitString(sign(signature.digest, info, createPrivateKey(keyPem))));
  return { keyPem, csrPem: toPem(der, 'CERTIFICATE REQUEST') };
}

// ---------------------------------------------------------------------------------------------------
// The CA

/** Creates a new self-signed CA: ECDSA P-256, valid ten years, may sign end-entity certificates only. */
export async function createCa(commonName = 'iotctl local CA'): Promise<CaMaterial> {
  const keys = await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']);
  const now = Math.floor(Date.now() / 1000) * 1000;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial().toString('hex'),
    // A name built from values, never parsed from a string: "a,O=b" stays one common name.
    name: [{ CN: [commonName] }],
    notBefore: new Date(now - BACKDATE_MS),
    notAfter: new Date(now + CA_VALID_DAYS * DAY_MS),
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  const pkcs8 = new Uint8Array(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  return { certPem: cert.toString('pem') + '\n', keyPem: toPem(pkcs8, 'PRIVATE KEY') };
}

interface EndEntityRequest {
  commonName: string;
  spki: Buffer;
  validityMs: number;
  extensions: Buffer[];
}

/** A loaded CA, ready to issue. Load once, issue many times. */
export class LocalCa {
  private constructor(
    readonly certPem: string,
    private readonly signingKey: KeyObject,
    private readonly signature: { algorithm: Buffer; digest: string },
    private readonly issuerName: Buffer,
    private readonly authorityKeyId: Buffer,
  ) {}

  /** Imports the CA's key and certificate once; fails with a UserError if they are unusable or mismatched. */
  static async load(material: CaMaterial): Promise<LocalCa> {
    let cert: NodeX509Certificate;
    let key: KeyObject;
    try {
      cert = new NodeX509Certificate(material.certPem);
    } catch (error) {
      throw new UserError(`The CA certificate cannot be read: ${(error as Error).message}`, REPLACE_CA_HINT, 'CA_INVALID');
    }
    try {
      key = createPrivateKey(material.keyPem);
    } catch (error) {
      throw new UserError(`The CA private key cannot be read: ${(error as Error).message}`, REPLACE_CA_HINT, 'CA_INVALID');
    }
    if (!cert.ca) throw new UserError('The CA certificate is not a CA certificate (basicConstraints CA:FALSE).', REPLACE_CA_HINT, 'CA_INVALID');
    const signature = key.asymmetricKeyType === 'ec' ? SIGNATURE_FOR_CURVE[key.asymmetricKeyDetails?.namedCurve ?? ''] : undefined;
    if (!signature) throw new UserError('The local CA key must be ECDSA P-256, P-384 or P-521.', REPLACE_CA_HINT, 'CA_INVALID');
    // A key from another CA would issue certificates nobody can verify: catch it now, not at TLS time.
    const probe = randomBytes(32);
    if (!verify(signature.digest, probe, cert.publicKey, sign(signature.digest, probe, key))) {
      throw new UserError('The CA private key does not match the CA certificate.', 'Restore the matching key, or delete both files to create a new CA.', 'CA_KEY_MISMATCH');
    }
    // Prefer the CA's own subject key identifier, so that the AKI we write always matches it.
    const ski = new x509.X509Certificate(cert.raw).getExtension(x509.SubjectKeyIdentifierExtension);
    const keyId = ski ? Buffer.from(ski.keyId, 'hex') : keyIdentifier(cert.publicKey.export({ type: 'spki', format: 'der' }));
    return new LocalCa(material.certPem, key, signature, subjectNameDer(cert.raw), keyId);
  }

  /** Assembles and signs an X.509 v3 end-entity certificate. */
  private build(request: EndEntityRequest): { pem: string; der: Buffer; notBefore: Date; notAfter: Date; subject: string } {
    const { notBefore, notAfter } = validity(request.validityMs);
    const subject = seq(tlv(0x31, seq(OID.commonName, tlv(0x0c, Buffer.from(request.commonName, 'utf8')))));
    const tbs = seq(
      explicit(0, tlv(0x02, Buffer.from([2]))), // v3
      tlv(0x02, randomSerial()),
      this.signature.algorithm,
      this.issuerName,
      seq(derTime(notBefore), derTime(notAfter)),
      subject,
      request.spki,
      explicit(
        3,
        seq(
          END_ENTITY.notCa,
          ...request.extensions,
          extension(OID.subjectKeyIdentifier, false, octetString(keyIdentifier(request.spki))),
          extension(OID.authorityKeyIdentifier, false, seq(tlv(0x80, this.authorityKeyId))),
        ),
      ),
    );
    const der = seq(tbs, this.signature.algorithm, bitString(sign(this.signature.digest, tbs, this.signingKey)));
    return { pem: toPem(der, 'CERTIFICATE'), der, notBefore, notAfter, subject: `CN=${request.commonName}` };
  }

  /**
   * Issues a device (TLS client) certificate with subject CN=<thingName>, key usage digitalSignature and
   * extended key usage clientAuth. Without a CSR a fresh ECDSA P-256 key pair is generated and its PKCS#8
   * PEM returned; with one, the CSR's signature is checked and only its public key is used.
   */
  async issue(opts: IssueOptions): Promise<IssuedCertificate> {
    if (!opts.thingName) throw new UserError('A device certificate needs a thing name.', undefined, 'THING_NAME_REQUIRED');
    let validityMs = opts.validityMs;
    if (validityMs === undefined) {
      const days = opts.validDays ?? DEVICE_VALID_DAYS;
      checkDays(days);
      validityMs = days * DAY_MS;
    } else checkValidityMs(validityMs);
    const generated = opts.csrPem === undefined ? newP256KeyPair() : undefined;
    const spki = generated?.spki ?? (await publicKeyOfCsr(opts.csrPem!));
    const cert = this.build({ commonName: opts.thingName, spki, validityMs, extensions: [END_ENTITY.digitalSignature, END_ENTITY.clientAuth] });
    return {
      certPem: cert.pem,
      ...(generated && { keyPem: generated.keyPem }),
      ...digestOf(cert.der),
      notBefore: cert.notBefore,
      notAfter: cert.notAfter,
      subject: cert.subject,
    };
  }

  /** A TLS server certificate (and its new P-256 key); `hosts` become DNS or IP subject alternative names. */
  serverCertificate(hosts: readonly string[], validDays = SERVER_VALID_DAYS): CaMaterial {
    if (hosts.length === 0) throw new UserError('A server certificate needs at least one host name or IP address.', undefined, 'HOSTS_REQUIRED');
    checkDays(validDays);
    const names = new x509.SubjectAlternativeNameExtension(hosts.map((host) => ({ type: isIP(host) ? 'ip' : 'dns', value: host })));
    const { keyPem, spki } = newP256KeyPair();
    const cert = this.build({
      commonName: hosts[0]!,
      spki,
      validityMs: validDays * DAY_MS,
      extensions: [END_ENTITY.digitalSignature, END_ENTITY.serverAuth, extension(OID.subjectAltName, false, new Uint8Array(names.value))],
    });
    return { certPem: cert.pem, keyPem };
  }
}

// Loading imports and checks the CA key: do it once per CA, however often the functions below run.
const loadedCas = new Map<string, Promise<LocalCa>>();

function loadOnce(ca: CaMaterial): Promise<LocalCa> {
  const key = `${ca.certPem}\0${ca.keyPem}`;
  let loading = loadedCas.get(key);
  if (!loading) {
    loading = LocalCa.load(ca);
    loadedCas.set(key, loading);
    loading.catch(() => loadedCas.delete(key));
  }
  return loading;
}

/** Issues the broker's TLS server certificate, e.g. for `['localhost', '127.0.0.1']`. */
export async function createServerCertificate(ca: CaMaterial, hosts: string[]): Promise<CaMaterial> {
  return (await loadOnce(ca)).serverCertificate(hosts);
}

/** Issues a device certificate (see `LocalCa.issue`), loading the CA only on first use. */
export async function issueDeviceCertificate(ca: CaMaterial, opts: IssueOptions): Promise<IssuedCertificate> {
  return (await loadOnce(ca)).issue(opts);
}
