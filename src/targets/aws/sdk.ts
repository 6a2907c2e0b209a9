import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { UserError } from '../../ui/errors.js';
import { SDK_PACKAGES } from './sdk-packages.js';

/**
 * One place that builds SDK v3 clients for the aws target: credentials from the default chain (env,
 * profiles, SSO, container and instance roles), region, endpoint override, adaptive retries, timeouts,
 * and one error translation for every call. Each service's module is imported on first use, so a
 * command loads only the clients it calls (and a local-target command loads none).
 */

// iotctl pins its SDK version: the SDK's notice about future releases needing Node 22 says nothing to its users.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

export interface AwsSettings {
  region?: string;
  profile?: string;
  /** --endpoint-url; AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_<SERVICE> are read by the SDK itself. */
  endpointUrl?: string;
  /** The account id the spec pins: every call is refused (WRONG_ACCOUNT) when the credentials belong to another. */
  account?: string;
  /** Cancels every call in flight (Ctrl-C). */
  signal?: AbortSignal;
}

type Modules = {
  iot: typeof import('@aws-sdk/client-iot');
  kinesis: typeof import('@aws-sdk/client-kinesis');
  lambda: typeof import('@aws-sdk/client-lambda');
  iam: typeof import('@aws-sdk/client-iam');
  athena: typeof import('@aws-sdk/client-athena');
  glue: typeof import('@aws-sdk/client-glue');
  logs: typeof import('@aws-sdk/client-cloudwatch-logs');
  rds: typeof import('@aws-sdk/client-rds');
  secrets: typeof import('@aws-sdk/client-secrets-manager');
  sts: typeof import('@aws-sdk/client-sts');
  sqs: typeof import('@aws-sdk/client-sqs');
  s3: typeof import('@aws-sdk/client-s3');
  firehose: typeof import('@aws-sdk/client-firehose');
  scheduler: typeof import('@aws-sdk/client-scheduler');
  iotanalytics: typeof import('@aws-sdk/client-iotanalytics');
  cloudwatch: typeof import('@aws-sdk/client-cloudwatch');
  servicequotas: typeof import('@aws-sdk/client-service-quotas');
};
export type ServiceName = keyof Modules;

type Clients = {
  iot: import('@aws-sdk/client-iot').IoTClient;
  kinesis: import('@aws-sdk/client-kinesis').KinesisClient;
  lambda: import('@aws-sdk/client-lambda').LambdaClient;
  iam: import('@aws-sdk/client-iam').IAMClient;
  athena: import('@aws-sdk/client-athena').AthenaClient;
  glue: import('@aws-sdk/client-glue').GlueClient;
  logs: import('@aws-sdk/client-cloudwatch-logs').CloudWatchLogsClient;
  rds: import('@aws-sdk/client-rds').RDSClient;
  secrets: import('@aws-sdk/client-secrets-manager').SecretsManagerClient;
  sts: import('@aws-sdk/client-sts').STSClient;
  sqs: import('@aws-sdk/client-sqs').SQSClient;
  s3: import('@aws-sdk/client-s3').S3Client;
  firehose: import('@aws-sdk/client-firehose').FirehoseClient;
  scheduler: import('@aws-sdk/client-scheduler').SchedulerClient;
  iotanalytics: import('@aws-sdk/client-iotanalytics').IoTAnalyticsClient;
  cloudwatch: import('@aws-sdk/client-cloudwatch').CloudWatchClient;
  servicequotas: import('@aws-sdk/client-service-quotas').ServiceQuotasClient;
};

const VENDOR = join(dirname(fileURLToPath(import.meta.url)), '../../vendor/aws-sdk');

/** A client's module: the bundle `npm run build` makes (much faster to load) when there is one, else the package. */
function loadSdk<T>(name: keyof typeof SDK_PACKAGES): Promise<T> {
  const bundled = join(VENDOR, `${name}.mjs`);
  return (existsSync(bundled) ? import(pathToFileURL(bundled).href) : import(SDK_PACKAGES[name])) as Promise<T>;
}

/** The client class each module exports, by our service name. */
const CLIENT_CLASS: Record<ServiceName, string> = {
  iot: 'IoTClient',
  kinesis: 'KinesisClient',
  lambda: 'LambdaClient',
  iam: 'IAMClient',
  athena: 'AthenaClient',
  glue: 'GlueClient',
  logs: 'CloudWatchLogsClient',
  rds: 'RDSClient',
  secrets: 'SecretsManagerClient',
  sts: 'STSClient',
  sqs: 'SQSClient',
  s3: 'S3Client',
  firehose: 'FirehoseClient',
  scheduler: 'SchedulerClient',
  iotanalytics: 'IoTAnalyticsClient',
  cloudwatch: 'CloudWatchClient',
  servicequotas: 'ServiceQuotasClient',
};

/** The IAM action prefix of each service, to name the denied action in AccessDenied errors. */
const IAM_PREFIX: Record<ServiceName, string> = {
  iot: 'iot',
  kinesis: 'kinesis',
  lambda: 'lambda',
  iam: 'iam',
  athena: 'athena',
  glue: 'glue',
  logs: 'logs',
  rds: 'rds',
  secrets: 'secretsmanager',
  sts: 'sts',
  sqs: 'sqs',
  s3: 's3',
  firehose: 'firehose',
  scheduler: 'scheduler',
  iotanalytics: 'iotanalytics',
  cloudwatch: 'cloudwatch',
  servicequotas: 'servicequotas',
};

type SdkClient = { destroy(): void; middlewareStack: { add(mw: unknown, opts: unknown): void } };

/** A service's client and its module (for the command classes), loaded on first use. */
export interface Service<K extends ServiceName> {
  client: Clients[K];
  sdk: Modules[K];
}

/** An AWS call that failed: which call, which resource, AWS's error code, and what to do. */
export class AwsCallError extends UserError {
  override name = 'AwsCallError';
  constructor(
    message: string,
    hint: string | undefined,
    readonly awsCode: string,
    readonly operation: string,
    readonly service: ServiceName,
    override readonly cause?: unknown,
  ) {
    super(message, hint, `AWS_${awsCode}`);
  }
}

/** True when an AWS call failed with one of these error codes (NotFound handling and the like). */
export function isAwsError(error: unknown, ...codes: string[]): error is AwsCallError {
  return error instanceof AwsCallError && (codes.length === 0 || codes.includes(error.awsCode));
}

/** Per attempt: IOTCTL_AWS_READ_TIMEOUT seconds (default 60, the AWS CLI's read timeout). */
function readTimeoutMs(): number {
  const seconds = Number(process.env.IOTCTL_AWS_READ_TIMEOUT ?? 60);
  return Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : 60_000;
}

export class AwsClients {
  private readonly made = new Map<ServiceName, Service<ServiceName>>();
  private accountIdCache?: Promise<string>;
  private accountCheck?: Promise<void>;

  constructor(readonly settings: AwsSettings) {}

  /** Reads run concurrently: the first caller of a service makes its client, the others wait for that one. */
  private readonly making = new Map<ServiceName, Promise<Service<ServiceName>>>();

  async get<K extends ServiceName>(service: K): Promise<Service<K>> {
    const existing = this.made.get(service);
    if (existing) return existing as unknown as Service<K>;
    let making = this.making.get(service);
    if (!making) {
      making = this.make(service) as unknown as Promise<Service<ServiceName>>;
      this.making.set(service, making);
      making.catch(() => this.making.delete(service));
    }
    return (await making) as unknown as Service<K>;
  }

  private async make<K extends ServiceName>(service: K): Promise<Service<K>> {
    // Start the account check now, so its round trip overlaps loading this service's module (the call awaits it).
    if (this.settings.account && service !== 'sts') this.checkAccount(this.settings.account).catch(() => undefined);
    const [sdk, { NodeHttpHandler }] = await Promise.all([loadSdk<Modules[K]>(service), loadSdk<typeof import('@smithy/node-http-handler')>('http')]);
    const Client = (sdk as unknown as Record<string, new (config: unknown) => SdkClient>)[CLIENT_CLASS[service]]!;
    const { region, profile, endpointUrl } = this.settings;
    const client = new Client({
      ...(region ? { region } : {}),
      ...(profile ? { profile } : {}),
      ...(endpointUrl ? { endpoint: endpointUrl } : {}),
      retryMode: 'adaptive',
      // Service Quotas only tunes pacing (quotas.ts falls back to the documented rates): fail fast rather than wait out retries.
      maxAttempts: service === 'servicequotas' ? 2 : Number(process.env.AWS_MAX_ATTEMPTS ?? 6),
      // Bounded waits: an endpoint that accepts and never answers fails each attempt after the read timeout
      // (the handler only warns at it unless told to throw), and the retries stop at the attempts above.
      requestHandler: new NodeHttpHandler({ connectionTimeout: 5_000, requestTimeout: readTimeoutMs(), throwOnRequestTimeout: true }),
      ...(service === 's3' && endpointUrl ? { forcePathStyle: true } : {}),
    });
    client.middlewareStack.add(
      (next: (args: unknown) => Promise<unknown>, context: { commandName?: string }) => async (args: { input?: Record<string, unknown> }) => {
        // No call leaves before the caller's account is known to be the pinned one (GetCallerIdentity itself excepted).
        if (this.settings.account && !(service === 'sts' && context.commandName === 'GetCallerIdentityCommand')) await this.checkAccount(this.settings.account);
        try {
          return await next(args);
        } catch (error) {
          throw translateError(error, service, (context.commandName ?? 'Unknown').replace(/Command$/, ''), args.input ?? {}, this.settings);
        }
      },
      { step: 'initialize', name: 'iotctlErrors', priority: 'high' },
    );
    const made = { client: client as unknown as Clients[K], sdk } as Service<K>;
    this.made.set(service, made as unknown as Service<ServiceName>);
    return made;
  }

  /** Options for client.send: the command's abort signal (Ctrl-C). */
  get sendOptions(): { abortSignal?: AbortSignal } {
    return this.settings.signal ? { abortSignal: this.settings.signal } : {};
  }

  async region(): Promise<string> {
    const { client } = await this.get('sts');
    try {
      return await client.config.region();
    } catch (error) {
      throw translateError(error, 'sts', 'ResolveRegion', {}, this.settings);
    }
  }

  /** The caller's account id (STS GetCallerIdentity), asked once per command. */
  accountId(): Promise<string> {
    return (this.accountIdCache ??= (async () => {
      const { client, sdk } = await this.get('sts');
      const out = await client.send(new sdk.GetCallerIdentityCommand({}), this.sendOptions);
      return out.Account!;
    })());
  }

  /** Refuses to act with credentials of another account than the pinned one; asked once per command. */
  private checkAccount(pinned: string): Promise<void> {
    return (this.accountCheck ??= this.accountId().then((actual) => {
      if (actual !== pinned) throw wrongAccount(pinned, actual, this.settings);
    }));
  }

  destroy(): void {
    for (const { client } of this.made.values()) (client as unknown as SdkClient).destroy();
    this.made.clear();
    this.making.clear();
  }
}

/**
 * For a call that has a fallback (a batch read, optional tags): an endpoint that does not serve the operation
 * (moto has no BatchGetNamedQuery nor IoT tagging) answers a 5xx HTML page, which the SDK would retry as a
 * server error, six times with backoff. Such an answer fails this command at once instead, for its fallback.
 */
export function failFastWhenUnserved<C extends { middlewareStack: { add(mw: never, opts: never): void } }>(command: C): C {
  const middleware = (next: (a: unknown) => Promise<unknown>) => async (args: unknown) => {
    try {
      return await next(args);
    } catch (error) {
      const res = (error as { $response?: { statusCode?: number; headers?: Record<string, string> } }).$response;
      if (res && (res.statusCode ?? 0) >= 500 && !/json|xml/i.test(res.headers?.['content-type'] ?? '')) throw Object.assign(new Error(`the endpoint does not serve this operation (HTTP ${res.statusCode})`), { name: 'UnservedOperation' });
      throw error;
    }
  };
  command.middlewareStack.add(middleware as never, { step: 'deserialize', name: 'iotctlUnserved', priority: 'high' } as never);
  return command;
}

/** The wrong-profile accident: the credentials in use belong to another account than the spec pins. */
export function wrongAccount(pinned: string, actual: string, settings: AwsSettings, env: NodeJS.ProcessEnv = process.env): UserError {
  const profile = settings.profile || env.AWS_PROFILE;
  const identity = profile ? `profile ${profile}` : env.AWS_ACCESS_KEY_ID ? 'the access key in AWS_ACCESS_KEY_ID' : 'the default credential chain';
  return new UserError(
    `The AWS credentials in use (${identity}) belong to account ${actual}, but iotctl.yaml pins account ${pinned}. Nothing was done.`,
    `Use credentials of account ${pinned}: --profile <name> or AWS_PROFILE=<name> with a profile of that account; if ${actual} is right, change \`account:\` in iotctl.yaml.`,
    'WRONG_ACCOUNT',
  );
}

/** The resource a call was about, from the usual input field names. */
function resourceOf(input: Record<string, unknown>): string | undefined {
  const keys = Object.keys(input);
  const key =
    keys.find((k) => /^(thingName|ruleName|policyName|StreamName|FunctionName|RoleName|QueryExecutionId|Name|DatabaseName|TableName|logGroupName|DBInstanceIdentifier|SecretId|QueueUrl|Bucket|DeliveryStreamName|certificateId|thingTypeName)$/i.test(k)) ??
    keys.find((k) => /(Name|Arn|Id)$/.test(k));
  const value = key ? input[key] : undefined;
  return typeof value === 'string' ? value : undefined;
}

function errorCode(error: unknown): string {
  const e = error as { name?: string; Code?: string; code?: string; __type?: string };
  return String(e.name ?? e.Code ?? e.code ?? 'Error');
}

/** Turn an SDK failure into a message that says which call, which resource, AWS's code, and the fix. */
export function translateError(error: unknown, service: ServiceName, operation: string, input: Record<string, unknown>, settings: AwsSettings): unknown {
  if (error instanceof AwsCallError) return error;
  const e = error as Error & { $metadata?: { httpStatusCode?: number }; code?: string; cause?: unknown };
  const code = errorCode(error);
  const resource = resourceOf(input);
  const call = `${IAM_PREFIX[service]}:${operation}`;
  const about = resource ? ` on ${resource}` : '';
  const profile = settings.profile ?? process.env.AWS_PROFILE;
  const message = (e?.message ?? String(error)).replace(/\s+/g, ' ').trim();

  if (code === 'AbortError' || (e as { name?: string })?.name === 'AbortError') {
    return new AwsCallError(`Cancelled during ${operation}.`, undefined, 'Cancelled', operation, service, error);
  }
  if (code === 'CredentialsProviderError' || /Could not load credentials|Unable to locate credentials/i.test(message)) {
    if (/sso|token/i.test(message)) {
      return new AwsCallError(
        `The AWS SSO session${profile ? ` of profile ${profile}` : ''} has expired or was never started (${operation}).`,
        `aws sso login${profile ? ` --profile ${profile}` : ''}`,
        'ExpiredSsoSession',
        operation,
        service,
        error,
      );
    }
    return new AwsCallError(
      `No AWS credentials found for ${operation}${profile ? ` (profile ${profile})` : ''}.`,
      'Set AWS_PROFILE (or --profile) to a configured profile, run `aws configure` / `aws sso login`, or export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.',
      'NoCredentials',
      operation,
      service,
      error,
    );
  }
  if (/Region is missing|region is missing|Invalid region|Region not accepted/i.test(message)) {
    return new AwsCallError('No AWS region is set.', 'Pass --region us-east-1, set AWS_REGION, write `region:` in iotctl.yaml, or set a region in your AWS profile.', 'MissingRegion', operation, service, error);
  }
  if (/ExpiredToken|TokenRefreshRequired|UnrecognizedClientException|InvalidClientTokenId|InvalidSignatureException|SignatureDoesNotMatch/.test(code)) {
    return new AwsCallError(
      `AWS rejected the credentials for ${call}${about}: ${code}.`,
      profile ? `Renew them: aws sso login --profile ${profile} (or refresh the keys of profile ${profile}).` : 'Renew the credentials (aws sso login, or fresh access keys), then retry.',
      code,
      operation,
      service,
      error,
    );
  }
  if (/AccessDenied|AccessDeniedException|UnauthorizedOperation|Forbidden|NotAuthorized/.test(code) || e?.$metadata?.httpStatusCode === 403) {
    return new AwsCallError(
      `Access denied: ${call}${about} (${code}).`,
      `Grant ${call} to the caller's IAM identity${profile ? ` (profile ${profile})` : ''}, or use a profile that has it.`,
      code === 'Error' ? 'AccessDenied' : code,
      operation,
      service,
      error,
    );
  }
  const network = (e as { code?: string })?.code ?? ((e?.cause as { code?: string } | undefined)?.code);
  if (/ECONNREFUSED|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|ECONNRESET|EHOSTUNREACH/.test(String(network)) || code === 'TimeoutError' || /socket hang up|timed out/i.test(message)) {
    const endpoint = settings.endpointUrl ?? process.env.AWS_ENDPOINT_URL ?? `the ${service} endpoint of ${settings.region ?? 'the region'}`;
    return new AwsCallError(
      `The AWS endpoint for ${service} (${endpoint}) did not answer ${operation}${about} (${network ?? code}).`,
      settings.endpointUrl || process.env.AWS_ENDPOINT_URL ? `Check --endpoint-url / AWS_ENDPOINT_URL (${settings.endpointUrl ?? process.env.AWS_ENDPOINT_URL}).` : 'Check the network and the region, then retry.',
      'EndpointUnreachable',
      operation,
      service,
      error,
    );
  }
  return new AwsCallError(`${call}${about} failed: ${code}: ${message}`, hintFor(code), code, operation, service, error);
}

function hintFor(code: string): string | undefined {
  if (/Throttl|TooManyRequests|LimitExceeded|ProvisionedThroughputExceeded/.test(code)) return 'AWS is throttling this account; retry later, or lower the request rate.';
  if (/NotFound|NoSuch/.test(code)) return 'Check the name, the region and the account; `iotctl status` shows what exists.';
  if (/Validation|InvalidRequest|InvalidParameter/.test(code)) return 'AWS rejected the request; check the value it names.';
  return undefined;
}
