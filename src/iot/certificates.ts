/**
 * Certificate lifecycle, pure: validity and window durations, days left, which certificates are expiring,
 * what a rotation in progress may do next, and which certificates prune may delete. No I/O.
 */

export const DAY_MS = 86_400_000;
/** The local CA's device certificate validity when iotctl.yaml sets none. */
export const DEFAULT_VALIDITY = '365d';

const UNIT_MS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: DAY_MS, w: 7 * DAY_MS, y: 365 * DAY_MS };

/** `90s`, `15m`, `1h`, `30d`, `2w`, `1y` in milliseconds; undefined when the text is not such a duration. */
export function parseLifetime(text: string): number | undefined {
  const m = /^\s*(\d+)\s*(s|m|h|d|w|y)\s*$/.exec(text);
  if (!m) return undefined;
  const ms = Number(m[1]) * UNIT_MS[m[2]!]!;
  return ms > 0 && Number.isFinite(ms) ? ms : undefined;
}

/** Whole days left until notAfter, rounded down; negative once expired. */
export function daysLeft(notAfter: number, now = Date.now()): number {
  return Math.floor((notAfter - now) / DAY_MS);
}

export type ExpiryState = 'valid' | 'expiring' | 'expired';

/** A certificate expires within the window (or has expired). */
export function expiryState(notAfter: number | null | undefined, windowMs: number, now = Date.now()): ExpiryState {
  if (notAfter === null || notAfter === undefined) return 'valid';
  if (notAfter <= now) return 'expired';
  return notAfter - now <= windowMs ? 'expiring' : 'valid';
}

/** What the lifecycle commands know of one certificate on either target. */
export interface CertificateView {
  certificateId: string;
  /** The things it is attached to (none: an orphan). */
  things: string[];
  status: string;
  /** ISO 8601, null when unknown. */
  notAfter: string | null;
  createdAt: string;
  /** Local: when the broker last accepted a connection with it (ISO 8601); aws: unknown (undefined). */
  lastConnectedAt?: string | null;
}

/** A make-before-break rotation in progress. */
export interface RotationState {
  thingName: string;
  oldCertificateId: string;
  newCertificateId: string;
  /** ISO 8601 */
  startedAt: string;
  /** ISO 8601: until then the old certificate stays ACTIVE. */
  graceUntil: string;
}

export type PruneReason = 'inactive' | 'revoked' | 'unattached';

/**
 * Why prune may delete a certificate, or undefined when it must keep it: INACTIVE/REVOKED ones and those attached
 * to no thing go; an ACTIVE certificate attached to a thing never does, nor one a rotation in progress still needs.
 */
export function pruneReason(cert: Pick<CertificateView, 'certificateId' | 'status' | 'things'>, protectedIds: ReadonlySet<string> = new Set()): PruneReason | undefined {
  if (protectedIds.has(cert.certificateId)) return undefined;
  if (cert.status === 'ACTIVE' && cert.things.length > 0) return undefined;
  if (cert.status === 'REVOKED') return 'revoked';
  if (cert.status === 'INACTIVE') return 'inactive';
  if (cert.things.length === 0) return 'unattached';
  return undefined;
}

export type FinishDecision = { finish: true; evidence: string } | { finish: false; reason: string; code: string; fix: string };

/**
 * Whether a rotation may finish (retire the old certificate): only once the new certificate is known to have
 * connected. `connected` is the target's evidence: true/false when it knows, undefined when it cannot see
 * connections (aws without fleet indexing), where only the operator's --confirm stands in for it.
 */
export function finishDecision(rotation: RotationState, connected: { known: boolean; connected: boolean; evidence?: string }, confirm: boolean): FinishDecision {
  if (confirm) return { finish: true, evidence: 'confirmed by the operator (--confirm)' };
  if (connected.known && connected.connected) return { finish: true, evidence: connected.evidence ?? 'the new certificate has connected' };
  if (connected.known) {
    return {
      finish: false,
      code: 'NEW_CERTIFICATE_NOT_CONNECTED',
      reason: `The new certificate ${rotation.newCertificateId.slice(0, 12)}… of ${rotation.thingName} has not connected yet, so the old one stays active.`,
      fix: `Install the new credentials on the device and let it connect, then run \`iotctl device rotate --finish ${rotation.thingName}\` again.`,
    };
  }
  return {
    finish: false,
    code: 'CONNECTION_UNKNOWN',
    reason: `The target cannot tell whether ${rotation.thingName} has connected with its new certificate (AWS shows connections only through fleet indexing's connectivity, which is off).`,
    fix: `Check that the device connects with the new certificate, then run \`iotctl device rotate --finish ${rotation.thingName} --confirm\` (or turn on fleet indexing with thing connectivity).`,
  };
}
