// MQTT 5 properties through the recent-data path on real processes: `iotctl publish --mqtt5` with a content type
// and user properties -> a rule reading get_mqtt_property('content_type') and get_user_properties() -> Kinesis ->
// ingest Lambda -> PostgreSQL, where `query sql` finds them. An MQTT 3.1.1 publish of the same rule has neither.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cli, makeProject, waitFor, type Project } from '../helpers/project.js';
import { freshDatabase } from '../helpers/pg.js';
import { initSpec } from '../../src/spec/init-template.js';
import { freePort } from '../../src/targets/local/postgres.js';

test('a rule reads the MQTT 5 content type and user properties of a publish, and they reach PostgreSQL', async () => {
  const spec = initSpec('e2e')
    .replace('mqttPort: 8883', `mqttPort: ${await freePort()}`)
    .replace('SELECT *, topic(3) AS device_id', "SELECT *, get_mqtt_property('content_type') AS content_type, get_user_properties('site') AS sites, topic(3) AS device_id");
  assert.match(spec, /get_user_properties/);
  const project: Project = makeProject(spec);
  const db = await freshDatabase(undefined, 'iotctl_mqtt5');
  const env = { DATABASE_URL: db.url };
  const run = (...args: string[]) => cli(args, { cwd: project.dir, env, timeoutMs: 120_000 });
  try {
    const up = await run('local', 'up', '--detach');
    assert.is(up.code, 0, up.stderr);
    assert.is((await run('apply', '--yes')).code, 0);
    assert.is((await run('device', 'register', 'sensor-1')).code, 0);

    // Properties without --mqtt5 are refused before connecting.
    const refused = await run('publish', '--device', 'sensor-1', '--payload', '{"seq": 0}', '--content-type', 'application/json');
    assert.is(refused.code, 1, refused.stderr);
    assert.match(refused.stderr, /--mqtt5/);

    const pub = await run('publish', '--device', 'sensor-1', '--payload', '{"seq": 1}', '--mqtt5', '--content-type', 'application/json',
      '--user-property', 'site=lab', '--user-property', 'site=north', '--user-property', 'batch=7', '--response-topic', 'cmd/e2e/sensor-1/reply', '--correlation-data', 'req-1');
    assert.is(pub.code, 0, pub.stderr);
    await new Promise((r) => setTimeout(r, 1000)); // AWS: 1 CONNECT per second per client id
    assert.is((await run('publish', '--device', 'sensor-1', '--payload', '{"seq": 2}')).code, 0);

    const rows = await waitFor(async () => {
      const r = await run('query', 'sql', "SELECT (payload->>'seq')::int AS seq, payload->>'content_type' AS content_type, payload->'sites' AS sites FROM iot_messages ORDER BY 1", '--json');
      if (r.code !== 0) return undefined;
      const parsed = JSON.parse(r.stdout).rows as { seq: number; content_type: string | null; sites: string[] | null }[];
      return parsed.length === 2 ? parsed : undefined;
    }, 60_000, 'two rows in iot_messages');
    assert.equal(rows, [
      { seq: 1, content_type: 'application/json', sites: ['lab', 'north'] },
      { seq: 2, content_type: null, sites: null },
    ]);
  } finally {
    await run('local', 'down');
    await db.drop();
    project.cleanup();
  }
});

test.run();
