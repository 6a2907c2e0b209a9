// What a rule evaluation can see besides the payload, and the per-evaluation state shared by
// every function call in one evaluation.

import type { EvaluationBudget } from './budget.js';

export interface EvalContext {
  /** Topic the message was published to. For Basic Ingest (`$aws/rules/<rule>/...`) the prefix is stripped for topic(). */
  topic: string;
  /** Raw payload bytes, or an already-parsed JSON value. */
  payload: Uint8Array | object;
  /** MQTT client id; clientid() returns 'n/a' without one, as AWS does for non-MQTT messages. */
  clientId?: string;
  /** Ingress time in ms since the epoch; timestamp() returns it. Defaults to the time of evaluation. */
  timestamp?: number;
  /** Certificate thumbprint, IAM user id or role:session returned by principal(). */
  principal?: string;
  /** Message id: traceid() returns it, and it seeds newuuid()/rand() so replays are reproducible. */
  messageId?: string;
  /** Name of the rule being evaluated: seeds newuuid()/rand() and selects Basic Ingest messages. */
  ruleName?: string;
  /** Account id returned by accountid(). */
  accountId?: string;
  /** Source IP address returned by sourceip(). */
  sourceIp?: string;
  /** MQTT 5 publish properties for get_mqtt_property(). */
  mqttProperties?: {
    contentType?: string;
    payloadFormatIndicator?: 0 | 1 | boolean;
    responseTopic?: string;
    correlationData?: Uint8Array | string;
  };
  /** MQTT 5 user properties for get_user_properties(); a key may repeat, hence the array form. */
  userProperties?: Readonly<Record<string, string | readonly string[]>>;
}

/** How one evaluation is run (as opposed to what it sees, EvalContext). */
export interface EvalOptions {
  /** A time budget (see budget.ts): past its deadline the evaluation throws EVALUATION_TIMEOUT. */
  budget?: EvaluationBudget;
}

/** State of one evaluation, created once per message. */
export interface Run {
  readonly ctx: Partial<EvalContext>;
  /** The topic seen by topic(): Basic Ingest prefix removed. */
  readonly topic: string;
  /** timestamp(): fixed for the whole evaluation. */
  readonly now: number;
  /** The payload bytes as received, for encode(*, ...) and binary SELECT *. */
  readonly bytes: Uint8Array | undefined;
  /** The payload document (parsed JSON, or a BinaryDocument). */
  readonly root: unknown;
  /** True when `root` was parsed by us from `bytes`, so the output may reuse it instead of copying. */
  readonly ownsRoot: boolean;
  readonly budget: EvaluationBudget | undefined;
}

/** The document attribute names resolve against: the payload, or an element in a nested query. */
export interface Frame {
  readonly doc: unknown;
  readonly run: Run;
}

/** Stands in for the document when the payload is not JSON, so attribute reads can be refused. */
export class BinaryDocument {
  constructor(readonly bytes: Uint8Array) {}
}
