// The least-privilege roles come from the migrations (src/db/roles.ts). Roles belong to the whole server, so these
// use role names of their own: a user without CREATEROLE migrates but is told which roles are missing; one with it
// creates them, read-only by default for the reader.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { migrate } from '../../../src/db/migrations.js';
import { ensureRoles } from '../../../src/db/roles.js';
import { freshDatabase, MACHINE_URL, withPg, type TestDatabase } from './helpers.js';

const tag = randomBytes(4).toString('hex');
const names = { writer: `iotctl_t${tag}_writer`, reader: `iotctl_t${tag}_reader` };
const plain = `iotctl_t${tag}_plain`;
let db: TestDatabase;

test.before(async () => {
  db = await freshDatabase(MACHINE_URL);
  await withPg(db.url, async (c) => {
    await migrate(c);
    await c.query(`CREATE ROLE ${plain} LOGIN NOCREATEROLE`);
  });
});
test.after(async () => {
  await withPg(db.url, (c) => c.query(`DROP OWNED BY ${plain}, ${names.writer}, ${names.reader}`).catch(() => undefined));
  await db.drop();
  await withPg(MACHINE_URL, (c) => c.query(`DROP ROLE IF EXISTS ${plain}, ${names.writer}, ${names.reader}`));
});

test('a user without CREATEROLE: nothing created, a warning naming the missing roles and the fix', async () => {
  const u = new URL(db.url);
  u.username = plain;
  const c = new pg.Client(u.toString());
  await c.connect();
  try {
    const r = await ensureRoles(c, names);
    assert.equal([r.created, r.granted, r.missing], [[], [], [names.writer, names.reader]]);
    assert.match(r.warning!, new RegExp(`${plain} may not create roles \\(no CREATEROLE\\)`));
    assert.match(r.warning!, new RegExp(`CREATE ROLE ${names.writer}; CREATE ROLE ${names.reader};`));
    assert.match(r.warning!, /iotctl db migrate/);
  } finally {
    await c.end();
  }
});

test('a user with CREATEROLE creates both roles and grants them; the reader is read-only by default; a second run changes nothing', async () => {
  const r = await withPg(db.url, (c) => ensureRoles(c, names));
  assert.equal([r.created, r.granted.sort(), r.missing, r.warning], [[names.writer, names.reader], [names.reader, names.writer].sort(), [], undefined]);
  const settings = await withPg(db.url, async (c) => (await c.query('SELECT unnest(setconfig) AS s FROM pg_db_role_setting WHERE setrole = $1::regrole', [names.reader])).rows.map((x) => x.s));
  assert.equal(settings, ['default_transaction_read_only=on']);
  const privileges = await withPg(db.url, async (c) =>
    (await c.query(`SELECT table_name, privilege_type FROM information_schema.role_table_grants WHERE grantee = $1 ORDER BY 1, 2`, [names.writer])).rows.map((x) => `${x.table_name}:${x.privilege_type}`),
  );
  assert.equal(privileges, ['iot_ingest_errors:INSERT', 'iot_messages:INSERT']);
  const again = await withPg(db.url, (c) => ensureRoles(c, names));
  assert.equal(again.created, []);
});

test.run();
