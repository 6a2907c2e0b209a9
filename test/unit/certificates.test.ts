import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { X509Certificate } from 'node:crypto';
import { daysLeft, expiryState, finishDecision, parseLifetime, pruneReason, type RotationState } from '../../src/iot/certificates.js';
import { parseRotation } from '../../src/targets/aws/devices.js';
import { createCa, LocalCa } from '../../src/targets/local/ca.js';

const DAY = 86_400_000;
const now = Date.parse('2026-12-07T00:00:00Z');

test('lifetimes: seconds to years; anything else is not one', () => {
  assert.equal(['90s', '15m', '1h', '30d', '2w', '1y'].map(parseLifetime), [90_000, 900_000, 3_600_000, 30 * DAY, 14 * DAY, 365 * DAY]);
  for (const bad of ['', '0d', '1.5d', '30', 'd', '1 year', '-1d']) assert.is(parseLifetime(bad), undefined, bad);
});

test('days left and expiry against a window', () => {
  assert.is(daysLeft(now + 29.9 * DAY, now), 29);
  assert.is(daysLeft(now - 0.5 * DAY, now), -1);
  assert.is(expiryState(now + 29 * DAY, 30 * DAY, now), 'expiring');
  assert.is(expiryState(now + 31 * DAY, 30 * DAY, now), 'valid');
  assert.is(expiryState(now - 1, 30 * DAY, now), 'expired');
  assert.is(expiryState(null, 30 * DAY, now), 'valid');
});

test('prune: never an ACTIVE attached certificate, nor a rotation side; INACTIVE, REVOKED and orphans go', () => {
  const c = (status: string, things: string[], certificateId = 'c') => ({ certificateId, status, things });
  assert.is(pruneReason(c('ACTIVE', ['t'])), undefined);
  assert.is(pruneReason(c('ACTIVE', [])), 'unattached');
  assert.is(pruneReason(c('INACTIVE', ['t'])), 'inactive');
  assert.is(pruneReason(c('REVOKED', [])), 'revoked');
  assert.is(pruneReason(c('INACTIVE', ['t'], 'old'), new Set(['old'])), undefined);
  assert.is(pruneReason(c('PENDING_TRANSFER', ['t'])), undefined);
});

test('finish: only with evidence of a connection, or the operator confirming where none can be seen', () => {
  const r: RotationState = { thingName: 't', oldCertificateId: 'a'.repeat(64), newCertificateId: 'b'.repeat(64), startedAt: '', graceUntil: '' };
  assert.ok(finishDecision(r, { known: true, connected: true }, false).finish);
  const notYet = finishDecision(r, { known: true, connected: false }, false);
  assert.equal([notYet.finish, !notYet.finish && notYet.code], [false, 'NEW_CERTIFICATE_NOT_CONNECTED']);
  const unknown = finishDecision(r, { known: false, connected: false }, false);
  assert.equal([unknown.finish, !unknown.finish && unknown.code], [false, 'CONNECTION_UNKNOWN']);
  assert.ok(finishDecision(r, { known: false, connected: false }, true).finish);
});

test('the aws rotation attribute round-trips, and anything else in it is no rotation', () => {
  const a = 'a'.repeat(64);
  const b = 'b'.repeat(64);
  assert.equal(parseRotation('t', `${a}:${b}:1796601600:1797206400`), { thingName: 't', oldCertificateId: a, newCertificateId: b, startedAt: '2026-12-07T00:00:00.000Z', graceUntil: '2026-12-14T00:00:00.000Z' });
  for (const bad of [undefined, '', `${a}:${b}`, `${a}:${b}:x:1`]) assert.is(parseRotation('t', bad), undefined);
});

test('the local CA issues a certificate valid for exactly the asked validity, down to seconds', async () => {
  const ca = await LocalCa.load(await createCa());
  const before = Math.floor(Date.now() / 1000) * 1000;
  const cert = await ca.issue({ thingName: 's', validityMs: 90_000 });
  const x = new X509Certificate(cert.certPem);
  const notAfter = Date.parse(x.validTo);
  assert.ok(notAfter >= before + 90_000 && notAfter <= before + 91_000, x.validTo);
  assert.is(cert.notAfter.getTime(), notAfter);
  const year = await ca.issue({ thingName: 's' });
  assert.is(Math.round((year.notAfter.getTime() - Date.now()) / DAY), 365);
  try {
    await ca.issue({ thingName: 's', validityMs: 10 });
    assert.unreachable();
  } catch (e) {
    assert.is((e as { code?: string }).code, 'VALIDITY_INVALID');
  }
});

test.run();
