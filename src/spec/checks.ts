import type { Spec, RuleAction } from './schema.js';
import { compileRule, compileTemplate, SqlError } from '../iot/sql/index.js';
import { analyticsSpecCheck } from '../iot/pipeline/spec-check.js';
import { athenaNameProblem } from './names.js';
import { datasetWindowProblem } from '../targets/aws/analytics/dataset-sql.js';
import { parseTemplateExpression } from '../iot/sql/parser.js';
import { topicTemplateProblems, type TemplateLiteral } from '../iot/topics.js';
import { environmentBytes, LAMBDA_ENVIRONMENT_BYTES, plaintextSecrets, SECRET_HINT } from './env-secrets.js';
import { lakeQueryProblems } from '../targets/local/lake/sql-text.js';
import { AWS_MEMBER_LIMITS, limitProblem, valuesAt } from './aws-limits.js';
import { runtimeProblem } from './runtimes.js';

export interface CheckProblem {
  path: (string | number)[];
  message: string;
  hint?: string;
  /** Offset inside the value at `path` (e.g. a SQL error column). */
  offset?: number;
  /** A warning is shown (spec validate) but does not make the spec invalid. */
  severity?: 'warning';
}

export type SpecCheck = (spec: Spec) => CheckProblem[];

/** Rule SQL and templates compile, and every action names a destination the spec declares. */
export const checkRules: SpecCheck = (spec) => {
  const problems: CheckProblem[] = [];
  const names = new Set<string>();
  const streams = new Set(spec.streams.map((s) => s.name));
  const channels = new Set(spec.analytics.channels.map((c) => c.name));
  const functions = new Set(spec.functions.map((f) => f.name));
  spec.rules.forEach((rule, i) => {
    if (names.has(rule.name)) problems.push({ path: ['rules', i, 'name'], message: `duplicate rule name "${rule.name}"`, hint: 'Rule names must be unique.' });
    names.add(rule.name);
    try {
      compileRule(rule.sql);
    } catch (e) {
      if (!(e instanceof SqlError)) throw e;
      problems.push({ path: ['rules', i, 'sql'], message: `${e.code}: ${e.message}`, offset: e.offset, hint: 'Test the SQL with `iotctl rules test --sql ...`.' });
    }
    const check = (action: RuleAction, path: (string | number)[]) => {
      const [type, fields] = Object.entries(action)[0] as [string, Record<string, unknown>];
      for (const [field, value] of Object.entries(fields)) {
        if (typeof value !== 'string' || !value.includes('${')) continue;
        try {
          compileTemplate(value);
        } catch (e) {
          if (!(e instanceof SqlError)) throw e;
          problems.push({ path: [...path, type, field], message: `${e.code}: ${e.message}`, offset: e.offset });
        }
      }
      const ref = (kind: string, name: unknown, known: Set<string>, section: string) => {
        if (typeof name === 'string' && !name.includes('${') && !known.has(name)) {
          problems.push({ path: [...path, type], message: `${kind} "${name}" is not declared`, hint: `Declare it under ${section}, or fix the name (declared: ${[...known].join(', ') || 'none'}).` });
        }
      };
      if (type === 'republish' && typeof fields.topic === 'string') {
        for (const p of republishTopicProblems(fields.topic)) {
          problems.push({ path: [...path, type, 'topic'], message: `republish topic: ${p.message}`, offset: p.index, hint: 'A republish topic is a topic name, held to AWS IoT limits: no + # or NUL, no $ prefix but $aws/, at most 256 bytes and 7 slashes.' });
        }
      }
      if (type === 'kinesis') ref('stream', fields.stream, streams, 'streams');
      if (type === 'iotAnalytics') ref('channel', fields.channel, channels, 'analytics.channels');
      if (type === 'lambda') ref('function', fields.function, functions, 'functions');
    };
    rule.actions.forEach((a, j) => check(a, ['rules', i, 'actions', j]));
    if (rule.errorAction) check(rule.errorAction, ['rules', i, 'errorAction']);
  });
  return problems;
};

/** The literal text of a republish topic template, checked against AWS IoT's topic limits (none when it does not compile). */
function republishTopicProblems(template: string) {
  const literals: TemplateLiteral[] = [];
  try {
    for (let i = 0; i < template.length; ) {
      const open = template.indexOf('${', i);
      if (open < 0) {
        literals.push({ text: template.slice(i), offset: i });
        break;
      }
      if (open > i) literals.push({ text: template.slice(i, open), offset: i });
      i = parseTemplateExpression(template, open + 2).end;
    }
  } catch (e) {
    if (e instanceof SqlError) return []; // reported by the template check above
    throw e;
  }
  return topicTemplateProblems(literals);
}

/** Functions name known templates' streams; names are unique. */
export const checkFunctionsAndStreams: SpecCheck = (spec) => {
  const problems: CheckProblem[] = [];
  const streams = new Set(spec.streams.map((s) => s.name));
  const dup = (list: { name: string }[], section: string) => {
    const seen = new Set<string>();
    list.forEach((item, i) => {
      if (seen.has(item.name)) problems.push({ path: [section, i, 'name'], message: `duplicate name "${item.name}"` });
      seen.add(item.name);
    });
  };
  dup(spec.streams, 'streams');
  dup(spec.functions, 'functions');
  const hook = spec.devices.provisioning?.preProvisioningHook;
  if (hook && !spec.functions.some((f) => f.name === hook))
    problems.push({ path: ['devices', 'provisioning', 'preProvisioningHook'], message: `function "${hook}" is not declared`, hint: 'Declare it under functions (its template answers { allowProvisioning, parameterOverrides }).' });
  spec.functions.forEach((fn, i) => {
    if (fn.eventSource && !streams.has(fn.eventSource.stream)) {
      problems.push({ path: ['functions', i, 'eventSource', 'stream'], message: `stream "${fn.eventSource.stream}" is not declared`, hint: 'Declare it under streams.' });
    }
  });
  return problems;
};

/**
 * athena.database, datastore and channel names become Glue database and table names (datastores are
 * `<athena.database>.<datastore>`, channels `channels.<channel>`), so they must be names Athena accepts.
 */
export const checkAthenaNames: SpecCheck = (spec) => {
  const problems: CheckProblem[] = [];
  const check = (what: string, name: string, path: (string | number)[]) => {
    const problem = athenaNameProblem(name);
    if (problem) problems.push({ path, message: `${what} "${name}" ${problem.message}`, hint: `Use "${problem.suggestion}".` });
  };
  check('athena.database', spec.athena.database, ['athena', 'database']);
  spec.analytics.datastores.forEach((d, i) => check('datastore name', d.name, ['analytics', 'datastores', i, 'name']));
  spec.analytics.channels.forEach((c, i) => check('channel name', c.name, ['analytics', 'channels', i, 'name']));
  return problems;
};

/** On AWS (datalake engine) a deltaTime window is its schedule's period, so it needs a schedule with a fixed one. */
export const checkAwsDatasetWindows: SpecCheck = (spec) => {
  if (spec.target !== 'aws' || spec.analytics.engine !== 'datalake') return [];
  return spec.analytics.datasets.flatMap((d, i) => {
    const message = datasetWindowProblem(d);
    return message ? [{ path: ['analytics', 'datasets', i, 'deltaTime'], message, hint: 'Use rate(...) or a cron that fires at even intervals, e.g. cron(0 2 * * ? *).' }] : [];
  });
};

/**
 * On aws, every number iotctl sends as an AWS API member is checked against that member's type and range
 * (aws-limits.ts, from AWS's API models) and the documented rules: the local platform honours a fractional
 * batching window, but Lambda's member is an integer, so the aws target refuses it rather than round it.
 */
export const checkAwsLimits: SpecCheck = (spec) => {
  if (spec.target !== 'aws') return [];
  const problems: CheckProblem[] = [];
  for (const limit of AWS_MEMBER_LIMITS) {
    if (limit.engine && limit.engine !== spec.analytics.engine) continue;
    for (const { path, value } of valuesAt(spec, limit.path)) {
      if (typeof value !== 'number') continue;
      const p = limitProblem(limit, value);
      if (p) problems.push({ path, ...p });
    }
  }
  return problems;
};
/** The earlier name of checkAwsLimits (it checked the batching window only). */
export const checkAwsEventSources = checkAwsLimits;

/** Each function's Lambda runtime: refused once Lambda has deprecated it (with the date), warned about 90 days before. */
export const checkRuntimes = (now: () => Date = () => new Date()): SpecCheck => (spec) =>
  spec.functions.flatMap((fn, i) => {
    const p = runtimeProblem(fn.runtime, now());
    return p ? [{ path: ['functions', i, 'runtime'], message: `function "${fn.name}": ${p.message}`, hint: p.hint, ...(p.severity === 'warning' ? { severity: 'warning' as const } : {}) }] : [];
  });

/** No secret in a function's environment unless allowPlaintextSecrets names it; at most Lambda's 4 KB of variables. */
export const checkFunctionEnvironments: SpecCheck = (spec) => {
  const problems: CheckProblem[] = [];
  spec.functions.forEach((fn, i) => {
    for (const { name, reason } of plaintextSecrets(fn.environment, fn.allowPlaintextSecrets ?? [])) {
      // The value is never repeated here: the message may end up in CI logs.
      problems.push({ path: ['functions', i, 'environment', name], message: `${name} looks like a secret (${reason}); it would be stored in plain text in the function's configuration and shown in plans`, hint: SECRET_HINT });
    }
    (fn.allowPlaintextSecrets ?? []).forEach((name, j) => {
      if (!(name in fn.environment)) problems.push({ path: ['functions', i, 'allowPlaintextSecrets', j], message: `${name} is not in this function's environment`, hint: 'Remove it from allowPlaintextSecrets: an allowance outlives the variable it was meant for.' });
    });
    const bytes = environmentBytes(fn.environment);
    if (bytes > LAMBDA_ENVIRONMENT_BYTES) problems.push({ path: ['functions', i, 'environment'], message: `the variables take ${bytes} bytes; Lambda allows ${LAMBDA_ENVIRONMENT_BYTES} in total`, hint: 'Move large values into S3, SSM Parameter Store or Secrets Manager and pass their names.' });
  });
  return problems;
};

/** Dataset SQL is one query over the lake's tables: no file-reading functions, no COPY, ATTACH, INSTALL, SET, ... */
export const checkDatasetSql: SpecCheck = (spec) =>
  spec.analytics.datasets.flatMap((d, i) => [
    ...lakeQueryProblems(d.sql).map((p) => ({ path: ['analytics', 'datasets', i, 'sql'], message: `dataset "${d.name}" ${p.message}`, offset: p.offset, hint: LAKE_HINT })),
    ...(d.deltaTime ? lakeQueryProblems(d.deltaTime.timeExpression, { expression: true }) : []).map((p) => ({
      path: ['analytics', 'datasets', i, 'deltaTime', 'timeExpression'],
      message: `dataset "${d.name}" timeExpression ${p.message}`,
      offset: p.offset,
      hint: LAKE_HINT,
    })),
  ]);
const LAKE_HINT = 'Read the lake through its tables (`iotctl athena tables` lists them); iotctl writes the content itself.';

export const specChecks: SpecCheck[] = [checkRules, checkFunctionsAndStreams, analyticsSpecCheck, checkAthenaNames, checkAwsDatasetWindows, checkAwsLimits, checkRuntimes(), checkFunctionEnvironments, checkDatasetSql];
