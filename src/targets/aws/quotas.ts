import type { AwsClients } from './sdk.js';

/**
 * The IoT API rates bulk registration paces itself at, from the account's applied quotas: Service Quotas
 * (service code `iotcore`, quota names "<Operation> API TPS") ListServiceQuotas, then ListAWSDefaultServiceQuotas
 * for what has no applied value, then the documented defaults (rate.ts). Read once per account and region per
 * run. Service Quotas only tunes the pace: when it cannot be read (AccessDenied, no such service in the region),
 * the documented rates are used with a one-line note, and the limiter's backoff still follows any throttle.
 */

/** Quota codes of the registration APIs in Service Quotas (iotcore), as ListAWSDefaultServiceQuotas lists them; matched by name too. */
export const IOT_QUOTA_CODES: Record<string, string> = {
  CreateThing: 'L-64CBACAC',
  CreateCertificateFromCsr: 'L-01BCDDCA',
  CreateKeysAndCertificate: 'L-40B55430',
  AttachPolicy: 'L-CA7D4E3E',
  AttachThingPrincipal: 'L-F64D1AA6',
  AddThingToThingGroup: 'L-2904683A',
};

export type RateSource = 'applied quota' | 'AWS default quota' | 'documented default' | 'IOTCTL_AWS_TPS' | 'configured';

export interface ApiRates {
  /** TPS per API. */
  rates: Record<string, number>;
  sources: Record<string, RateSource>;
  /** Why Service Quotas was not (fully) used, in one line. */
  note?: string;
}

type Read = { applied: Record<string, number>; defaults: Record<string, number>; note?: string };
const cache = new Map<string, Promise<Read>>();

/** `IOTCTL_AWS_TPS`: "10" sets every API, "CreateThing=5,AttachPolicy=20" some. */
export function parseTpsOverrides(ops: readonly string[], value: string | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  for (const part of (value ?? '').split(',').map((p) => p.trim()).filter(Boolean)) {
    const [k, v] = part.includes('=') ? part.split('=', 2) : [undefined, part];
    const n = Number(v);
    if (!(n > 0)) continue;
    if (k) out[k.trim()] = n;
    else for (const op of ops) out[op] = n;
  }
  return out;
}

/** The rates for `documented`'s APIs in this account and region, cached for the run. */
export function iotApiRates(aws: AwsClients, documented: Record<string, number>, env: string | undefined = process.env.IOTCTL_AWS_TPS): Promise<ApiRates> {
  const ops = Object.keys(documented);
  const overrides = parseTpsOverrides(ops, env);
  // Every rate given: no need to ask AWS.
  if (ops.every((op) => op in overrides)) return Promise.resolve(merge(documented, overrides, {}, {}));
  return (async () => {
    const [account, region] = await Promise.all([aws.accountId().catch(() => 'unknown'), aws.region().catch(() => 'unknown')]);
    const key = `${account}/${region}/${ops.join(',')}`;
    let read = cache.get(key);
    if (!read) {
      read = readQuotas(aws, ops);
      cache.set(key, read);
    }
    const { applied, defaults, note } = await read;
    return { ...merge(documented, overrides, applied, defaults), ...(note ? { note } : {}) };
  })();
}

/** Forget what was read (tests run several accounts' worth in one process). */
export function clearQuotaCache(): void {
  cache.clear();
}

function merge(documented: Record<string, number>, overrides: Record<string, number>, applied: Record<string, number>, defaults: Record<string, number>): ApiRates {
  const rates: Record<string, number> = {};
  const sources: Record<string, RateSource> = {};
  for (const op of Object.keys(documented)) {
    const [rate, source]: [number, RateSource] =
      op in overrides ? [overrides[op]!, 'IOTCTL_AWS_TPS'] : op in applied ? [applied[op]!, 'applied quota'] : op in defaults ? [defaults[op]!, 'AWS default quota'] : [documented[op]!, 'documented default'];
    rates[op] = rate;
    sources[op] = source;
  }
  return { rates, sources };
}

type Quota = { QuotaName?: string; QuotaCode?: string; Value?: number };

async function readQuotas(aws: AwsClients, ops: readonly string[]): Promise<Read> {
  const problems: string[] = [];
  const list = async (operation: 'ListServiceQuotas' | 'ListAWSDefaultServiceQuotas'): Promise<Record<string, number>> => {
    try {
      const { client, sdk } = await aws.get('servicequotas');
      const found: Record<string, number> = {};
      let token: string | undefined;
      do {
        const input = { ServiceCode: 'iotcore', MaxResults: 100, ...(token ? { NextToken: token } : {}) };
        const out = operation === 'ListServiceQuotas' ? await client.send(new sdk.ListServiceQuotasCommand(input), aws.sendOptions) : await client.send(new sdk.ListAWSDefaultServiceQuotasCommand(input), aws.sendOptions);
        for (const q of (out.Quotas ?? []) as Quota[]) {
          const op = ops.find((o) => q.QuotaCode === IOT_QUOTA_CODES[o] || q.QuotaName === `${o} API TPS`);
          if (op && typeof q.Value === 'number' && q.Value > 0) found[op] = q.Value;
        }
        token = out.NextToken;
      } while (token);
      return found;
    } catch (error) {
      if (aws.settings.signal?.aborted) throw error;
      // Any failure: these rates only tune the pace, and the documented ones are safe (the limiter backs off on a throttle).
      const e = error as { awsCode?: string; name?: string };
      problems.push(`${e.awsCode ?? e.name ?? 'error'} on servicequotas:${operation}`);
      return {};
    }
  };
  const applied = await list('ListServiceQuotas');
  const missing = ops.filter((op) => !(op in applied));
  const defaults = missing.length ? await list('ListAWSDefaultServiceQuotas') : {};
  const unresolved = missing.filter((op) => !(op in defaults));
  const note = problems.length && unresolved.length ? `Service Quotas could not be read (${problems.join('; ')}): ${unresolved.join(', ')} paced at AWS's documented rates.` : undefined;
  return { applied, defaults, ...(note ? { note } : {}) };
}
