import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { evaluatePolicy, validatePolicyDocument } from '../../../src/iot/policy/index.js';
import { AWS_EXAMPLES } from './aws-examples.js';

for (const example of AWS_EXAMPLES) {
  test(`AWS example is valid: ${example.name}`, () => {
    assert.equal(validatePolicyDocument(example.document), []);
  });

  for (const c of example.cases) {
    test(`${example.name} / ${c.title}`, () => {
      const result = evaluatePolicy(example.document, c.request);
      assert.is(result.decision, c.decision);
      assert.is(result.reason, c.reason);
      for (const [index, reason] of Object.entries(c.statementReasons ?? {})) {
        assert.is(result.statements[Number(index)]?.reason, reason, `statement ${index}`);
      }
    });
  }
}

test.run();
