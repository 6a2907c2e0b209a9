// AWS IoT SQL compliance: every JSON file in test/fixtures/sql holds cases taken from the AWS IoT
// SQL reference (function examples, operator and conversion tables, clause examples). Each case
// runs a full rule (`sql`) or a single expression (`expression`) and must give exactly `result`,
// `undefined: true` (SQL Undefined, or a rule that does not fire), `resultBase64` (raw bytes) or
// the error `error` (a SqlError or SqlRuntimeError code).

import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { compileExpression, compileRule, SqlError, SqlRuntimeError, type EvalContext } from '../../../src/iot/sql/index.js';

interface Given {
  topic?: string;
  /** JSON payload; published as its UTF-8 JSON text unless payloadAsObject is set. */
  payload?: unknown;
  /** A non-JSON payload, as text or base64. */
  payloadText?: string;
  payloadBase64?: string;
  /** Pass the payload as an already-parsed object instead of bytes. */
  payloadAsObject?: boolean;
  clientId?: string;
  timestamp?: number;
  principal?: string;
  messageId?: string;
  ruleName?: string;
  accountId?: string;
  sourceIp?: string;
  mqttProperties?: EvalContext['mqttProperties'];
  userProperties?: EvalContext['userProperties'];
}

interface Case {
  sql?: string;
  expression?: string;
  given?: Given;
  result?: unknown;
  undefined?: true;
  resultBase64?: string;
  error?: string;
  note?: string;
}

interface Fixture {
  description: string;
  source?: string;
  given: Given;
  cases: Case[];
}

const fixturesDir = join(dirname(fileURLToPath(import.meta.url)), '../../fixtures/sql');
const files = readdirSync(fixturesDir).filter((f) => f.endsWith('.json')).sort();

function payloadOf(g: Given): Uint8Array | object {
  if (g.payloadBase64 !== undefined) return new Uint8Array(Buffer.from(g.payloadBase64, 'base64'));
  if (g.payloadText !== undefined) return new TextEncoder().encode(g.payloadText);
  if (g.payloadAsObject) return g.payload as object;
  return new TextEncoder().encode(JSON.stringify(g.payload ?? {}));
}

function contextOf(g: Given): EvalContext {
  const { payload: _p, payloadText: _t, payloadBase64: _b, payloadAsObject: _o, ...rest } = g;
  // A case sets a field to null to remove it from the fixture-wide context.
  const fields = Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== null));
  return { ...fields, topic: g.topic ?? 'a/b', payload: payloadOf(g) };
}

function run(c: Case, given: Given): unknown {
  if (c.sql !== undefined) return compileRule(c.sql).evaluate(contextOf(given));
  if (c.expression !== undefined) {
    const ctx = contextOf(given);
    return compileExpression(c.expression).evaluate(ctx.payload, ctx);
  }
  throw new Error('case has neither sql nor expression');
}

let total = 0;
for (const file of files) {
  const fixture = JSON.parse(readFileSync(join(fixturesDir, file), 'utf8')) as Fixture;
  fixture.cases.forEach((c, i) => {
    total++;
    const given = { ...fixture.given, ...c.given };
    const label = `${file}#${i + 1}: ${c.sql ?? c.expression}`;
    test(label, () => {
      if (c.error !== undefined) {
        let thrown: unknown;
        try {
          run(c, given);
        } catch (e) {
          thrown = e;
        }
        assert.ok(thrown instanceof SqlError || thrown instanceof SqlRuntimeError, `expected error ${c.error}, got ${String(thrown ?? 'no error')}`);
        assert.is((thrown as SqlError | SqlRuntimeError).code, c.error);
        return;
      }
      const actual = run(c, given);
      if (c.undefined) {
        assert.is(actual, undefined);
      } else if (c.resultBase64 !== undefined) {
        assert.ok(actual instanceof Uint8Array, 'expected raw bytes');
        assert.is(Buffer.from(actual as Uint8Array).toString('base64'), c.resultBase64);
      } else {
        assert.ok('result' in c, `${label} has no expected result`);
        // Compare through JSON so that key order and Int/Decimal spelling match what actions receive.
        assert.equal(actual, c.result);
      }
    });
  });
}

test('the fixtures cover hundreds of cases', () => {
  assert.ok(total >= 300, `only ${total} compliance cases`);
});

test.run();
