/** AWS IoT Core policy documents and the requests evaluated against them. */

export type PolicyConditionScalar = string | number | boolean;
export type PolicyConditionValue = PolicyConditionScalar | readonly PolicyConditionScalar[];

/** `{ "<Operator>": { "<condition key>": value | [values] } }` */
export type PolicyCondition = Record<string, Record<string, PolicyConditionValue>>;

export interface PolicyStatement {
  Sid?: string;
  Effect: 'Allow' | 'Deny';
  /** Exactly one of Action / NotAction. */
  Action?: string | readonly string[];
  NotAction?: string | readonly string[];
  /** Exactly one of Resource / NotResource. */
  Resource?: string | readonly string[];
  NotResource?: string | readonly string[];
  Condition?: PolicyCondition;
}

export interface PolicyDocument {
  /** AWS IoT requires "2012-10-17", the version that enables policy variables. */
  Version?: string;
  Statement: PolicyStatement | readonly PolicyStatement[];
}

/** One authorization check, as the message broker makes it. */
export interface PolicyRequest {
  /** e.g. `iot:Connect`, `iot:Publish` (case-insensitive, as in IAM). */
  action: string;
  /**
   * The resource ARN, e.g. `iotArn('topic', 'dt/p/t1/telemetry')`. A short `topic/...`, `topicfilter/...`,
   * `client/...` or `thing/...` form is accepted and expanded with `iotArn`'s default region and account.
   */
  resource: string;
  /** The MQTT client id: `${iot:ClientId}`. */
  clientId: string;
  /** The registry thing the connection is associated with: `${iot:Connection.Thing.ThingName}`. */
  thingName?: string;
  /** `${iot:Connection.Thing.Attributes[name]}` */
  thingAttributes?: Record<string, string>;
  /** `${iot:Connection.Thing.ThingTypeName}` */
  thingTypeName?: string;
  /**
   * `iot:Connection.Thing.IsAttached`: whether the thing is attached to the connecting principal.
   * Defaults to `thingName !== undefined`. When false, the thing variables do not resolve, as on AWS.
   */
  isAttached?: boolean;
  /**
   * `iot:ConnectAttributes`, the MQTT features a CONNECT uses: `PersistentConnect` (the session is not
   * clean) and `LastWill` (the CONNECT carries a will message). A clean CONNECT without a will has none,
   * an empty set: `ForAllValues:` conditions on it hold and `ForAnyValue:` ones do not, as in IAM.
   */
  connectAttributes?: readonly string[];
  /**
   * Any other condition keys / policy variables, e.g. `aws:SourceIp`, `iot:Certificate.Subject.CommonName`,
   * `iot:ConnectAttributes` (multi-valued). Key names are case-insensitive.
   */
  context?: Record<string, string | readonly string[]>;
}

export interface StatementResult {
  /** Position of the statement in its document's Statement array (0-based). */
  index: number;
  /** Position of the document in the list given to `evaluatePolicies` (0-based). */
  policy?: number;
  sid?: string;
  effect: 'Allow' | 'Deny';
  /** True when the statement applies to the request (action, resource and conditions all match). */
  matched: boolean;
  /** Why it matched, or the first thing that did not. */
  reason: string;
}

export interface PolicyDecision {
  decision: 'allow' | 'deny';
  reason: 'explicit-allow' | 'explicit-deny' | 'implicit-deny';
  statements: StatementResult[];
}
