import { existsSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Spec } from '../spec/schema.js';
import type { DeviceRegistryPort } from '../ports.js';
import { daysLeft, DEFAULT_VALIDITY, expiryState, finishDecision, parseLifetime, pruneReason, type CertificateView, type ExpiryState, type PruneReason, type RotationState } from '../iot/certificates.js';
import { UserError } from '../ui/errors.js';
import { readCredentialsIndex } from './credentials-index.js';
import { stageFolder } from './files.js';
import { mapLimit } from '../concurrency.js';

/** A duration flag or spec value (`30d`, `1y`, `1h`) in ms, or a user error naming it. */
export function lifetimeMs(text: string, what: string): number {
  const ms = parseLifetime(text);
  if (ms === undefined) throw new UserError(`Invalid ${what} "${text}".`, 'Write a number and a unit: 90s, 15m, 1h, 30d, 2w or 1y.', 'DURATION_INVALID');
  return ms;
}

/** The validity the local CA gives device certificates: `devices.certificateValidity`, default one year. */
export function specValidityMs(spec: Spec): number {
  return lifetimeMs(spec.devices.certificateValidity ?? DEFAULT_VALIDITY, 'devices.certificateValidity');
}

export interface CertificateRow extends CertificateView {
  /** The thing it belongs to (the first, where AWS has it attached to several). */
  thingName: string | null;
  daysLeft: number | null;
  expiry: ExpiryState;
  /** Its part in a rotation in progress. */
  rotation?: 'old' | 'new';
}

function row(c: CertificateView, windowMs: number, rotations: RotationState[], now: number): CertificateRow {
  const notAfter = c.notAfter ? Date.parse(c.notAfter) : null;
  const rotation = rotations.find((r) => r.oldCertificateId === c.certificateId) ? 'old' : rotations.find((r) => r.newCertificateId === c.certificateId) ? 'new' : undefined;
  return { ...c, thingName: c.things[0] ?? null, daysLeft: notAfter === null ? null : daysLeft(notAfter, now), expiry: expiryState(notAfter, windowMs, now), ...(rotation ? { rotation } : {}) };
}

/** Every certificate of the stage's things with days left and expiry against the window. */
export async function certificateRows(devices: DeviceRegistryPort, windowMs: number, opts: { thingName?: string; now?: number } = {}): Promise<CertificateRow[]> {
  const now = opts.now ?? Date.now();
  const [certs, rotations] = await Promise.all([devices.certificates(opts.thingName ? { thingName: opts.thingName } : {}), devices.rotations(opts.thingName)]);
  return certs.map((c) => row(c, windowMs, rotations, now));
}

/** Certificates that expire within the window or have expired (REVOKED/INACTIVE ones no longer matter). */
export async function expiringCertificates(devices: DeviceRegistryPort, windowMs: number, now = Date.now()): Promise<CertificateRow[]> {
  return (await certificateRows(devices, windowMs, { now })).filter((c) => c.expiry !== 'valid' && c.status === 'ACTIVE').sort((a, b) => (a.notAfter ?? '').localeCompare(b.notAfter ?? ''));
}

/** What `iotctl status` says of the certificates. */
export interface CertificateCounts {
  windowDays: number;
  active: number;
  expiring: number;
  expired: number;
  rotating: number;
}

export async function certificateCounts(devices: DeviceRegistryPort, windowMs: number, now = Date.now()): Promise<CertificateCounts> {
  const rows = await certificateRows(devices, windowMs, { now });
  const active = rows.filter((r) => r.status === 'ACTIVE');
  return {
    windowDays: Math.round(windowMs / 86_400_000),
    active: active.length,
    expiring: active.filter((r) => r.expiry === 'expiring').length,
    expired: active.filter((r) => r.expiry === 'expired').length,
    rotating: new Set(rows.filter((r) => r.rotation).map((r) => r.thingName)).size,
  };
}

// ------------------------------------------------------------------------------------------- rotation

export interface RotateOptions {
  /** How long the old certificate stays ACTIVE. */
  graceMs: number;
  /** The user's CSR (the key stays on the device); else a local key and CSR. */
  csrPem?: string;
  /** Local CA only. */
  validityMs?: number;
  /** Where the thing's credentials folder is (`<outDir>/<thing>`), unless the credentials index names another. */
  outDir: string;
  /** The state dir holding the credentials index (`device register --out` anywhere). */
  stateDir?: string;
  /** Finish a rotation in progress now (before its grace ends), and never start one. */
  finish?: boolean;
  /** aws: the operator vouches that the new certificate has connected. */
  confirm?: boolean;
  now?: () => number;
  /** What the caller read already (bulk): the thing's rotation and certificates, so they are not read twice. */
  known?: { rotation: RotationState | undefined; certs?: CertificateView[] };
}

export type RotateAction = 'started' | 'finished' | 'in-grace' | 'waiting';

export interface RotateResult {
  thingName: string;
  action: RotateAction;
  oldCertificateId: string;
  newCertificateId: string;
  graceUntil?: string;
  /** Where the new credentials are (`<thing>/next/` until finish, then `<thing>/`). */
  credentials?: string;
  notAfter?: string | null;
  /** Why a finish was not possible, or what allowed it. */
  detail?: string;
}

/** The folder holding a thing's credentials: where `device register` wrote them. */
export function credentialsDirOf(thingName: string, outDir: string, stateDir?: string): string {
  const own = resolve(outDir, thingName);
  if (existsSync(join(own, 'cert.pem'))) return own;
  const remembered = stateDir ? readCredentialsIndex(stateDir)[thingName] : undefined;
  return remembered && existsSync(remembered) ? remembered : own;
}

const CREDENTIAL_FILES = ['cert.pem', 'private.key', 'ca.pem', 'endpoint.json'];

/** next/ records the id the target gave its certificate (AWS's ids are not always the DER's hash: moto hashes the PEM). */
const ID_FILE = 'certificate-id';

function certificateIdIn(next: string): string | undefined {
  try {
    return readFileSync(join(next, ID_FILE), 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

/**
 * One thing's rotation, make before break:
 * - none in progress: a new certificate (policy and thing attached, ACTIVE), its credentials in `<thing>/next/`
 *   beside the old ones, and the rotation recorded; the old certificate stays ACTIVE for the grace;
 * - one in progress: within the grace nothing happens unless `finish`; after it (or with `finish`) the old
 *   certificate is retired, but only once the new one is known to have connected (or `confirm`).
 */
export async function rotateDevice(devices: DeviceRegistryPort, spec: Spec, thingName: string, opts: RotateOptions): Promise<RotateResult> {
  const now = opts.now ?? Date.now;
  const rotation = opts.known ? opts.known.rotation : (await devices.rotations(thingName))[0];
  const dir = credentialsDirOf(thingName, opts.outDir, opts.stateDir);
  if (rotation) {
    const base = { thingName, oldCertificateId: rotation.oldCertificateId, newCertificateId: rotation.newCertificateId, graceUntil: rotation.graceUntil };
    if (!opts.finish && now() < Date.parse(rotation.graceUntil)) return { ...base, action: 'in-grace', credentials: join(dir, 'next') };
    const evidence = opts.confirm ? { known: false, connected: false } : await devices.connectedSince(rotation.newCertificateId, thingName, Date.parse(rotation.startedAt));
    const decision = finishDecision(rotation, evidence, Boolean(opts.confirm));
    if (!decision.finish) {
      if (opts.finish) throw new UserError(decision.reason, decision.fix, decision.code);
      return { ...base, action: 'waiting', detail: decision.reason };
    }
    promoteCredentials(dir, rotation.newCertificateId);
    await devices.retireCertificate(rotation.oldCertificateId);
    await devices.setRotation(thingName, undefined);
    return { ...base, action: 'finished', credentials: dir, detail: decision.evidence };
  }
  if (opts.finish) throw new UserError(`${thingName} has no rotation in progress.`, `Start one with \`iotctl device rotate ${thingName}\`.`, 'NO_ROTATION');

  const certs = opts.known?.certs ?? (await devices.certificates({ thingName }));
  const active = certs.filter((c) => c.status === 'ACTIVE');
  if (!active.length) {
    throw new UserError(`${thingName} has no ACTIVE certificate to rotate.`, `A revoked device is registered again (\`iotctl device delete ${thingName}\`, then \`device register\`), not rotated.`, 'NO_ACTIVE_CERTIFICATE');
  }
  const next = join(dir, 'next');
  // Resume: a run that wrote next/ and stopped before recording the rotation left a certificate that is attached and ACTIVE.
  const leftover = certificateIdIn(next);
  const resumed = leftover ? active.find((c) => c.certificateId === leftover) : undefined;
  const old = active.filter((c) => c.certificateId !== resumed?.certificateId).sort((a, b) => a.createdAt.localeCompare(b.createdAt)).at(-1);
  if (!old) throw new UserError(`${thingName} has no ACTIVE certificate besides the new one in ${next}.`, `Run \`iotctl device rotate --finish ${thingName}\` once it has connected.`, 'NO_ACTIVE_CERTIFICATE');
  let newId: string;
  let notAfter: string | null = null;
  if (resumed) {
    newId = resumed.certificateId;
    notAfter = resumed.notAfter;
  } else {
    if (existsSync(next)) rmSync(next, { recursive: true, force: true }); // an earlier run's, whose certificate never got attached
    const staged = stageFolder(next, { flag: '--out' });
    let issued;
    try {
      issued = await devices.addCertificate({ thingName, policyName: spec.devices.policy.name, ...(opts.csrPem !== undefined ? { csrPem: opts.csrPem } : {}), ...(opts.validityMs !== undefined ? { validityMs: opts.validityMs } : {}) });
    } catch (e) {
      staged.discard();
      throw e;
    }
    try {
      staged.write({ name: 'cert.pem', data: issued.certPem });
      if (issued.keyPem) staged.write({ name: 'private.key', data: issued.keyPem, mode: 0o600 });
      staged.write({ name: 'ca.pem', data: existsSync(join(dir, 'ca.pem')) ? readFileSync(join(dir, 'ca.pem'), 'utf8') : issued.caPem });
      staged.write({ name: 'endpoint.json', data: JSON.stringify(issued.endpoint, null, 2) + '\n' });
      staged.write({ name: ID_FILE, data: issued.certificateId + '\n' });
      staged.commit();
    } catch (e) {
      staged.discard();
      await devices.retireCertificate(issued.certificateId).catch(() => {});
      throw new UserError(`Could not write the new credentials of ${thingName} to ${next}: ${(e as Error).message}`, 'Check that the credentials folder is writable; the new certificate was removed again.', 'OUTPUT_UNWRITABLE');
    }
    newId = issued.certificateId;
    notAfter = issued.notAfter;
  }
  const started = now();
  const state: RotationState = { thingName, oldCertificateId: old.certificateId, newCertificateId: newId, startedAt: new Date(started).toISOString(), graceUntil: new Date(started + opts.graceMs).toISOString() };
  await devices.setRotation(thingName, state);
  return { thingName, action: 'started', oldCertificateId: old.certificateId, newCertificateId: newId, graceUntil: state.graceUntil, credentials: next, notAfter };
}

/** The new credentials replace the old ones in `<thing>/` (file by file, by rename); a rerun after a crash finds next/ gone and goes on. */
function promoteCredentials(dir: string, newCertificateId: string): void {
  const next = join(dir, 'next');
  if (!existsSync(join(next, 'cert.pem'))) return; // promoted already, or the new key never was here (--csr)
  const id = certificateIdIn(next);
  if (id !== newCertificateId) {
    throw new UserError(`${join(next, 'cert.pem')} is not the rotation's new certificate ${newCertificateId.slice(0, 12)}….`, `Put the new certificate back in ${next}, or remove that folder and finish again.`, 'CREDENTIALS_MISMATCH');
  }
  // The key first: a cert.pem already new beside an old key would be a pair that cannot connect.
  // With --csr the new key is on the device only: the old key here belongs to the retired certificate and would pair with nothing.
  if (!existsSync(join(next, 'private.key'))) rmSync(join(dir, 'private.key'), { force: true });
  for (const f of ['private.key', ...CREDENTIAL_FILES.filter((f) => f !== 'private.key')]) if (existsSync(join(next, f))) renameSync(join(next, f), join(dir, f));
  rmSync(next, { recursive: true, force: true });
}

export interface BulkRotateResult {
  started: RotateResult[];
  finished: RotateResult[];
  inGrace: RotateResult[];
  waiting: RotateResult[];
  /** Things with nothing expiring in the window. */
  skipped: number;
  failed: { thingName: string; error: string }[];
}

/**
 * `device rotate --expiring 30d`: every thing whose ACTIVE certificate expires within the window (or has expired)
 * is rotated, and rotations in progress move on (finished after their grace once connected). One pipeline per
 * thing (read, decide, rotate), so reads and writes share the paced APIs' time; a rerun picks up where it stopped.
 */
export async function rotateExpiring(
  devices: DeviceRegistryPort,
  spec: Spec,
  windowMs: number,
  opts: RotateOptions & { concurrency?: number; signal?: AbortSignal },
  onProgress: (done: number, total: number) => void = () => {},
): Promise<BulkRotateResult> {
  const now = opts.now ?? Date.now;
  const things = await devices.thingNames();
  const result: BulkRotateResult = { started: [], finished: [], inGrace: [], waiting: [], skipped: 0, failed: [] };
  let done = 0;
  await mapLimit(things, opts.concurrency ?? (await devices.bulkConcurrency()), async (thingName) => {
    if (opts.signal?.aborted) return;
    try {
      const [rotation] = await devices.rotations(thingName);
      let certs: CertificateView[] | undefined;
      if (!rotation) {
        certs = await devices.certificates({ thingName });
        const due = certs.some((c) => c.status === 'ACTIVE' && expiryState(c.notAfter ? Date.parse(c.notAfter) : null, windowMs, now()) !== 'valid');
        if (!due) {
          result.skipped++;
          return;
        }
      }
      const r = await rotateDevice(devices, spec, thingName, { ...opts, finish: false, known: { rotation, ...(certs ? { certs } : {}) } });
      ({ started: result.started, finished: result.finished, 'in-grace': result.inGrace, waiting: result.waiting })[r.action].push(r);
    } catch (e) {
      result.failed.push({ thingName, error: (e as Error).message });
    } finally {
      onProgress(++done, things.length);
    }
  });
  return result;
}

// ------------------------------------------------------------------------------------------- prune

export interface PruneItem {
  certificateId: string;
  things: string[];
  status: string;
  reason: PruneReason;
  notAfter: string | null;
}

export interface PruneResult {
  dryRun: boolean;
  deleted: PruneItem[];
  failed: { certificateId: string; error: string }[];
}

/**
 * INACTIVE/REVOKED certificates and those attached to no thing, deleted (detached first); never an ACTIVE
 * attached one, and never either side of a rotation in progress.
 */
export async function pruneCertificates(devices: DeviceRegistryPort, opts: { dryRun: boolean }): Promise<PruneResult> {
  const [certs, rotations] = await Promise.all([devices.certificates({ orphans: true }), devices.rotations()]);
  const protectedIds = new Set(rotations.flatMap((r) => [r.oldCertificateId, r.newCertificateId]));
  const candidates: PruneItem[] = [];
  for (const c of certs) {
    const reason = pruneReason(c, protectedIds);
    if (reason) candidates.push({ certificateId: c.certificateId, things: c.things, status: c.status, reason, notAfter: c.notAfter });
  }
  const result: PruneResult = { dryRun: opts.dryRun, deleted: [], failed: [] };
  if (opts.dryRun) return { ...result, deleted: candidates };
  for (const c of candidates) {
    try {
      await devices.retireCertificate(c.certificateId);
      result.deleted.push(c);
    } catch (e) {
      result.failed.push({ certificateId: c.certificateId, error: (e as Error).message });
    }
  }
  return result;
}
