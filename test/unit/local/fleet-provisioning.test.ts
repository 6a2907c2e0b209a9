/** The local fleet provisioning service without a broker: token expiry as AWS documents it, and the per-claim cap. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore } from '../../../src/targets/local/store.js';
import { Registry } from '../../../src/targets/local/registry.js';
import { createCa, LocalCa } from '../../../src/targets/local/ca.js';
import { FleetProvisioning, MAX_PENDING_PER_CLAIM, OWNERSHIP_TOKEN_TTL_MS } from '../../../src/targets/local/provisioning.js';
import { ProvisioningError, provisioningTemplateBody } from '../../../src/iot/provisioning.js';

const dir = mkdtempSync(join(tmpdir(), 'iotctl-fp-'));
const db = openStore(dir);
const registry = new Registry(db);
let now = Date.parse('2026-12-01T00:00:00Z');
const ca = LocalCa.load(await createCa('test CA'));
const service = new FleetProvisioning(registry, () => ca, undefined, () => now);
const caller = { certificateId: 'claim-1', clientId: 'line' };
const json = (v: unknown) => Buffer.from(JSON.stringify(v));
const create = () => service.handle({ api: 'CreateKeysAndCertificate', format: 'json' }, json({}), caller);
const register = (token: unknown) => service.handle({ api: 'RegisterThing', template: 'factory', format: 'json' }, json({ certificateOwnershipToken: token, parameters: { Sn: '1' } }), caller);
async function rejection(p: Promise<unknown>) {
  try {
    await p;
  } catch (e) {
    if (e instanceof ProvisioningError) return e.payload();
    throw e;
  }
  throw new Error('expected a rejection');
}

registry.putPolicy('dev', { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'iot:Connect', Resource: '*' }] });
registry.putProvisioningTemplate({ name: 'factory', body: provisioningTemplateBody({ template: 'factory', thingName: 's-{{Sn}}', attributes: {} }, { policy: 'dev' }), description: '', enabled: true });

test.after(() => {
  db.close();
  rmSync(dir, { recursive: true, force: true });
});

test('a token expires after one hour; its certificate, never activated, is deleted', async () => {
  const created = await create();
  now += OWNERSHIP_TOKEN_TTL_MS + 1;
  assert.is((await rejection(register(created.certificateOwnershipToken))).errorCode, 'InvalidCertificateOwnershipToken');
  assert.is(registry.getCertificate(created.certificateId as string)?.status, 'PENDING_ACTIVATION');
  await create(); // the next request sweeps expired tokens
  assert.is(registry.getCertificate(created.certificateId as string), undefined);
});

test('a token used within the hour activates its certificate; a disabled template provisions nothing', async () => {
  const created = await create();
  registry.putProvisioningTemplate({ ...registry.getProvisioningTemplate('factory')!, enabled: false });
  assert.equal(await rejection(register(created.certificateOwnershipToken)), { statusCode: 404, errorCode: 'ResourceNotFound', errorMessage: 'Template factory not found or not enabled' });
  registry.putProvisioningTemplate({ ...registry.getProvisioningTemplate('factory')!, enabled: true });
  now += OWNERSHIP_TOKEN_TTL_MS - 1000;
  assert.equal(await register(created.certificateOwnershipToken), { deviceConfiguration: {}, thingName: 's-1' });
  assert.is(registry.getCertificate(created.certificateId as string)!.status, 'ACTIVE');
});

test('one claim certificate may keep at most so many certificates waiting', async () => {
  registry.transaction(() => {
    for (let i = 0; i < MAX_PENDING_PER_CLAIM; i++) {
      registry.addCertificate({ id: `p${i}`, thingName: null, pem: '', fingerprint: '', status: 'PENDING_ACTIVATION', notAfter: now + 1e9 });
      registry.addOwnershipToken(`t${i}`, `p${i}`, 'claim-1', now + OWNERSHIP_TOKEN_TTL_MS);
    }
  });
  assert.is((await rejection(create())).statusCode, 429);
  // Another claim certificate is not held back by this one.
  const other = await service.handle({ api: 'CreateKeysAndCertificate', format: 'json' }, json({}), { certificateId: 'claim-2', clientId: 'x' });
  assert.ok(other.certificateOwnershipToken);
});

test.run();
