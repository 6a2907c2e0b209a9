// A template's bundle hash without bundling when its inputs are unchanged (services/bundle.ts bundleDigest):
// the cache remembers the sha256 of every file esbuild read; any input that differs means bundling again.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { bundleDigest, bundleTemplate } from '../../../src/services/bundle.js';

const dir = mkdtempSync(join(tmpdir(), 'iotctl-bundle-cache-'));
process.env.IOTCTL_CACHE_DIR = join(dir, 'cache');
const file = join(dir, 'cache', 'bundles.json');
type Cache = Record<string, { inputs: Record<string, string>; sha256: string; bytes: number }>;
const read = () => JSON.parse(readFileSync(file, 'utf8')) as Cache;

test.after(() => rmSync(dir, { recursive: true, force: true }));

test('the hash comes from the cache while every input is unchanged, and from a new bundle once one differs', async () => {
  const built = await bundleTemplate('pipeline-transform', join(dir, 'out'));
  const [key, entry] = Object.entries(read())[0]!;
  assert.ok(Object.keys(entry.inputs).some((i) => i.includes('templates/pipeline-transform/handler')), 'the inputs esbuild read are remembered');
  assert.is(entry.sha256, built.sha256);
  assert.equal(await bundleDigest('pipeline-transform'), { sha256: built.sha256, bytes: built.bytes });

  // Proof that nothing is bundled on a hit: a remembered hash is answered as it is.
  writeFileSync(file, JSON.stringify({ [key]: { ...entry, sha256: 'f'.repeat(64) } }));
  assert.is((await bundleDigest('pipeline-transform')).sha256, 'f'.repeat(64));

  // One input that no longer matches: bundled again, and the cache holds the real hash once more.
  const [first] = Object.keys(entry.inputs);
  writeFileSync(file, JSON.stringify({ [key]: { ...entry, sha256: 'f'.repeat(64), inputs: { ...entry.inputs, [first!]: '0'.repeat(64) } } }));
  assert.is((await bundleDigest('pipeline-transform')).sha256, built.sha256);
  assert.is(read()[key]!.sha256, built.sha256);
});

test('an unreadable cache only means bundling', async () => {
  writeFileSync(file, 'not json');
  const { sha256 } = await bundleDigest('ingest-rds');
  assert.match(sha256, /^[0-9a-f]{64}$/);
  assert.ok(Object.values(read()).some((e) => e.sha256 === sha256));
});

test.run();
