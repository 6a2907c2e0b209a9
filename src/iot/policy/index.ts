/**
 * `iotctl/policy`: an AWS IoT Core policy evaluator. Pure functions, no I/O.
 *
 *   evaluatePolicy(doc, { action: 'iot:Publish', resource: iotArn('topic', 'dt/p/t1/telemetry'), clientId: 't1', thingName: 't1' })
 *
 * Semantics are IAM's: explicit Deny wins, otherwise any Allow, otherwise the implicit deny. Actions
 * match case-insensitively and resources case-sensitively, with `*`/`?` wildcards; policy variables
 * are substituted first, and a variable without a value matches nothing.
 */
export type {
  PolicyCondition,
  PolicyConditionScalar,
  PolicyConditionValue,
  PolicyDecision,
  PolicyDocument,
  PolicyRequest,
  PolicyStatement,
  StatementResult,
} from './types.js';
export { evaluatePolicies, evaluatePolicy } from './evaluate.js';
export { validatePolicyDocument } from './validate.js';
export { PolicyDocumentError } from './document.js';
export { defaultDevicePolicy, type DevicePolicyTopics } from './defaults.js';
export { IOT_POLICY_ACTIONS, canonicalAction, iotArn, resourceKindOf, type IotResourceKind } from './actions.js';
