// One redaction function for every connection string form pg/libpq accept (issue 16, finding 2): each case is
// a text that holds the password "S3cr3t-pw" (or a variant) and must come out without it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { holdsSecret, knownSecrets, redactSecrets, redactUrl } from '../../../src/db/redact.js';
import { checkConnectionUrl, configuredDatabase } from '../../../src/db/connection.js';
import { UserError } from '../../../src/ui/errors.js';

const CASES: Array<[string, string, string]> = [
  // [what, input, expected]
  ['postgres URL', 'postgres://app:S3cr3t-pw@db:5432/iot', 'postgres://app:***@db:5432/iot'],
  ['postgresql URL', 'postgresql://app:S3cr3t-pw@db/iot?sslmode=require', 'postgresql://app:***@db/iot?sslmode=require'],
  ['percent-encoded password', 'postgres://app:S3%40cr%2F3t@db/iot', 'postgres://app:***@db/iot'],
  ['raw @ / # in a malformed URL', 'postgres://app:S3@cr/3#t@db/iot', 'postgres://app:***@db/iot'],
  ['empty user', 'postgres://:S3cr3t-pw@db/iot', 'postgres://:***@db/iot'],
  ['IPv6 host', 'postgres://app:S3cr3t-pw@[::1]:5432/iot', 'postgres://app:***@[::1]:5432/iot'],
  ['?password= query', 'postgres://app@db/iot?password=S3cr3t-pw&sslmode=require', 'postgres://app@db/iot?password=***&sslmode=require'],
  ['&sslpassword= query', 'postgres://app@db/iot?sslmode=require&sslpassword=S3cr3t-pw', 'postgres://app@db/iot?sslmode=require&sslpassword=***'],
  ['conninfo', 'host=db port=5432 user=app password=S3cr3t-pw dbname=iot', 'host=db port=5432 user=app password=*** dbname=iot'],
  ['conninfo, spaces around =', 'host=db password = S3cr3t-pw dbname=iot', 'host=db password = *** dbname=iot'],
  ['conninfo, quoted with spaces', "host=db password='S3 cr3t pw' dbname=iot", 'host=db password=*** dbname=iot'],
  ['conninfo, quoted with escaped quote', "host=db password='S3\\'cr3t' dbname=iot", 'host=db password=*** dbname=iot'],
  ['conninfo, upper case key', 'host=db PASSWORD=S3cr3t-pw', 'host=db PASSWORD=***'],
  ['PGPASSWORD assignment', 'PGPASSWORD=S3cr3t-pw psql -h db', 'PGPASSWORD=*** psql -h db'],
  ['SQL PASSWORD literal', "ALTER ROLE app PASSWORD 'S3cr3t-pw';", "ALTER ROLE app PASSWORD '***';"],
  ['JSON config', '{"host":"db","password":"S3cr3t-pw"}', '{"host":"db","password":"***"}'],
  ['URL inside a sentence', 'Cannot connect to postgres://app:S3cr3t-pw@db/iot (from DATABASE_URL): refused', 'Cannot connect to postgres://app:***@db/iot (from DATABASE_URL): refused'],
  ['two URLs on two lines', 'a postgres://u:p1p1p1@h/d\nb postgres://v:p2p2p2@h/d', 'a postgres://u:***@h/d\nb postgres://v:***@h/d'],
];

for (const [what, input, expected] of CASES) {
  test(`redacts: ${what}`, () => {
    assert.is(redactSecrets(input, []), expected);
    assert.ok(holdsSecret(input), 'holdsSecret sees it');
  });
}

test('text without a password is unchanged', () => {
  for (const text of ['postgres://app@db:5432/iot', 'postgres://db:5432/iot?sslmode=require', 'host=db user=app dbname=iot', 'the password is wrong', 'mqtts://127.0.0.1:8883']) {
    assert.is(redactSecrets(text, []), text);
    assert.is(redactUrl(text), text);
  }
});

test('passwords known from the environment are masked wherever they appear, even without a recognisable form', () => {
  const env = { DATABASE_URL: 'postgres://app:p%40ss word12@db/iot', PGPASSWORD: 'pg-env-secret' };
  const secrets = knownSecrets(env);
  assert.ok(secrets.includes('p@ss word12') && secrets.includes('pg-env-secret'));
  assert.is(redactSecrets('failed near "p@ss word12" and pg-env-secret', secrets), 'failed near "***" and ***');
  assert.is(redactSecrets('x=p%40ss word12', secrets), 'x=***');
  assert.is(redactSecrets('xpg-env-secretx pg-env-secret', secrets), 'xpg-env-secretx ***', 'whole tokens only');
  // A short password (PGPASSWORD=postgres on many CI runners) would mask ordinary words: forms only.
  assert.is(redactSecrets('the postgres user', knownSecrets({ PGPASSWORD: 'postgres' })), 'the postgres user');
  assert.equal(knownSecrets({ DATABASE_URL: 'postgres://db/iot?password=q-secret-12' }).includes('q-secret-12'), true);
  assert.equal(knownSecrets({ DATABASE_URL: "host=db password='c secret 12'" }).includes('c secret 12'), true);
});

test('malformed and unsupported URLs are user errors that name the problem and mask the password', () => {
  const bad = [
    'postgres://app:S3cr3t-pw@db:notaport/iot',
    'postgres://app:S3cr3t-pw@[db/iot',
    'host=db user=app password=S3cr3t-pw',
    'mysql://app:S3cr3t-pw@db/iot',
    'app:S3cr3t-pw@db/iot',
  ];
  for (const url of bad) {
    try {
      checkConnectionUrl(url, 'DATABASE_URL');
      assert.unreachable(`accepted ${url}`);
    } catch (e) {
      assert.instance(e, UserError, url);
      const { message, hint, code } = e as UserError;
      assert.is(code, 'DB_URL_INVALID');
      assert.not.ok(`${message} ${hint}`.includes('S3cr3t'), `${url}: ${message}`);
      assert.match(message, /DATABASE_URL/);
    }
  }
  // Through the resolver too, whatever the source.
  assert.throws(() => configuredDatabase({ env: { DATABASE_URL: bad[0] } }), (e: Error) => e instanceof UserError && !e.message.includes('S3cr3t'));
  assert.throws(() => configuredDatabase({ env: {}, spec: { database: { url: bad[2] } } }), (e: Error) => e instanceof UserError && /iotctl\.yaml/.test(e.message));
});

test('every form pg accepts passes the check unchanged', () => {
  for (const url of ['postgres://app:S3cr3t-pw@db:5432/iot', 'postgresql://app@db/iot?password=x&sslmode=require', 'postgres://app:p ss@db/iot', 'postgres://app:p%40ss@db/iot', 'postgres://app:pw@/iot?host=/var/run/postgresql', '/var/run/postgresql iot', 'socket:/var/run/postgresql?db=iot']) {
    assert.is(checkConnectionUrl(url, 'DATABASE_URL'), url);
  }
});

test.run();
