import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { assertClaimable, ownerOf, ownerTags } from '../../../src/targets/aws/ownership.js';

const handBuilt = { team: 'payments' };

test('a resource no iotctl deployment owns is refused, with --adopt named as the way in', () => {
  const err = (() => {
    try {
      assertClaimable('Kinesis stream', 'orders', handBuilt, ownerOf('fleet', 'prod'));
    } catch (e) {
      return e as Error & { hint?: string; code?: string };
    }
  })();
  assert.is(err?.code, 'RESOURCE_NOT_OURS');
  assert.match(String(err?.hint), /apply --adopt/);
});

test('--adopt claims it (tagged by the plan), but never another project\'s or stage\'s resource', () => {
  assert.is(assertClaimable('Kinesis stream', 'orders', handBuilt, ownerOf('fleet', 'prod', true)), 'legacy');
  for (const other of [ownerOf('fleet', 'staging'), ownerOf('payments', 'prod')]) {
    assert.throws(() => assertClaimable('Kinesis stream', 'orders', ownerTags(other), ownerOf('fleet', 'prod', true)), (e: Error & { hint?: string }) => !/--adopt/.test(String(e.hint)) && /another project's or stage's/.test(String(e.hint)));
  }
  assert.is(assertClaimable('Kinesis stream', 'orders', ownerTags(ownerOf('fleet', 'prod')), ownerOf('fleet', 'prod', true)), 'owned');
});

test.run();
