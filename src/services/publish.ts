import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { readCredentialsIndex } from './credentials-index.js';
import type { IClientPublishOptions, MqttClient } from 'mqtt';
import { UserError } from '../ui/errors.js';
import type { Endpoint } from '../ports.js';
import { MAX_USER_PROPERTIES_BYTES, userPropertiesBytes } from '../iot/mqtt5.js';

/** MQTT 5 PUBLISH properties `iotctl publish --mqtt5` sends. */
export type PublishProperties = NonNullable<IClientPublishOptions['properties']>;

export interface DeviceCredentials {
  thingName: string;
  cert: string;
  key: string;
  ca: string;
  endpoint: Endpoint;
}

/**
 * Read <dir>/<thing>/{cert.pem,private.key,ca.pem,endpoint.json} as `device register` wrote them. When they are
 * not there and a state dir is given, the folder `device register --out` recorded for the thing is used.
 */
export function readCredentials(dir: string, thingName: string, stateDir?: string): DeviceCredentials {
  let base = join(dir, thingName);
  const remembered = stateDir ? readCredentialsIndex(stateDir)[thingName] : undefined;
  if (!existsSync(join(base, 'cert.pem')) && remembered && existsSync(remembered)) base = remembered;
  const read = (f: string) => {
    try {
      return readFileSync(join(base, f), 'utf8');
    } catch {
      const hint = remembered && remembered !== resolve(base)
        ? `Its credentials were written to ${remembered}, which is gone or incomplete: register it again, or point --credentials at the folder that holds ${thingName}/.`
        : `Register it with \`iotctl device register ${thingName}\`, or point --credentials at the folder holding its credentials.`;
      throw new UserError(`No ${f} for ${thingName} in ${base}.`, hint, 'CREDENTIALS_NOT_FOUND');
    }
  };
  let endpoint: Endpoint;
  try {
    endpoint = JSON.parse(read('endpoint.json'));
    if (typeof endpoint.host !== 'string' || !Number.isInteger(endpoint.port)) throw new Error('needs {"host": string, "port": number}');
  } catch (e) {
    if (e instanceof UserError) throw e;
    throw new UserError(`${join(base, 'endpoint.json')} is invalid: ${(e as Error).message}`, 'Write it as {"host": "127.0.0.1", "port": 8883}, or pass --host and --port.', 'CREDENTIALS_INVALID');
  }
  return { thingName, cert: read('cert.pem'), key: read('private.key'), ca: read('ca.pem'), endpoint };
}

/** Placeholders that make repeated messages differ: {{seq}}, {{now}} (epoch ms) and {{random}} (0-100). */
export function expandPayload(template: string, seq: number, now = Date.now()): string {
  return template.replaceAll('{{seq}}', String(seq)).replaceAll('{{now}}', String(now)).replaceAll('{{random}}', (Math.random() * 100).toFixed(2));
}

/**
 * CONNACK "server unavailable": the broker throttles the client id (AWS IoT: 1 CONNECT per second per client id).
 * 3 in MQTT 3.1.1; in MQTT 5, 0x88 (Server unavailable) or 0x9F (Connection rate exceeded).
 */
const THROTTLED = new Set<unknown>([3, 0x88, 0x9f]);

/** Connects as the device; a throttled CONNECT is tried again after a second, as device SDKs back off. */
export async function connectDevice(creds: DeviceCredentials, endpoint: Endpoint = creds.endpoint, clientId = creds.thingName, attempts = 3, protocolVersion: 4 | 5 = 4): Promise<MqttClient> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await connectOnce(creds, endpoint, clientId, protocolVersion);
    } catch (e) {
      if (!THROTTLED.has((e as { code?: unknown }).code) || attempt >= attempts) throw mapConnectError(e, creds, endpoint, clientId);
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

/**
 * `--user-property k=v` (repeatable; a key given twice keeps both values, as MQTT 5 allows) into the properties of
 * a PUBLISH, held to AWS IoT Core's 8 KB of user properties.
 */
export function publishProperties(opts: { userProperties?: readonly string[]; contentType?: string; responseTopic?: string; correlationData?: string }): PublishProperties | undefined {
  const props: PublishProperties = {};
  if (opts.userProperties?.length) {
    const user: Record<string, string | string[]> = {};
    for (const pair of opts.userProperties) {
      const eq = pair.indexOf('=');
      if (eq <= 0) throw new UserError(`--user-property "${pair}" is not key=value.`, 'Write it as --user-property site=lab; repeat the flag for more.', 'INVALID_USER_PROPERTY');
      const [key, value] = [pair.slice(0, eq), pair.slice(eq + 1)];
      const prev = user[key];
      user[key] = prev === undefined ? value : [...(typeof prev === 'string' ? [prev] : prev), value];
    }
    const bytes = userPropertiesBytes(user);
    if (bytes > MAX_USER_PROPERTIES_BYTES) {
      throw new UserError(`The user properties are ${bytes} bytes; AWS IoT Core allows ${MAX_USER_PROPERTIES_BYTES} (keys and values together).`, 'Send fewer or shorter user properties, or put the data in the payload.', 'USER_PROPERTIES_TOO_LARGE');
    }
    props.userProperties = user;
  }
  if (opts.contentType !== undefined) props.contentType = opts.contentType;
  if (opts.responseTopic !== undefined) {
    if (/[#+]/.test(opts.responseTopic)) throw new UserError(`--response-topic "${opts.responseTopic}" has a wildcard.`, 'A response topic is a topic name, without + or #.', 'INVALID_RESPONSE_TOPIC');
    props.responseTopic = opts.responseTopic;
  }
  if (opts.correlationData !== undefined) props.correlationData = Buffer.from(opts.correlationData, 'utf8');
  return Object.keys(props).length ? props : undefined;
}

async function connectOnce(creds: DeviceCredentials, endpoint: Endpoint, clientId: string, protocolVersion: 4 | 5): Promise<MqttClient> {
  const { default: mqtt } = await import('mqtt');
  const client = mqtt.connect({
    protocol: 'mqtts',
    host: endpoint.host,
    port: endpoint.port,
    servername: /^[\d.]+$/.test(endpoint.host) ? undefined : endpoint.host,
    key: creds.key,
    cert: creds.cert,
    ca: creds.ca,
    clientId,
    protocolVersion,
    reconnectPeriod: 0,
    connectTimeout: 10_000,
    rejectUnauthorized: true,
  });
  try {
    // A broker that refuses the certificate closes the socket without a CONNACK: treat close as refusal.
    await new Promise<void>((resolve, reject) => {
      client.once('connect', () => resolve());
      client.once('error', reject);
      client.once('close', () => reject(Object.assign(new Error('the broker closed the connection during the handshake'), { code: 'ECONNRESET' })));
    });
    return client;
  } catch (e) {
    client.end(true);
    throw e;
  }
}

function mapConnectError(e: unknown, creds: DeviceCredentials, endpoint: Endpoint, clientId: string): Error {
  const err = e as NodeJS.ErrnoException;
  if (err.code === 'ECONNREFUSED') return new UserError(`Nothing listens on ${endpoint.host}:${endpoint.port}.`, 'Start the local platform with `iotctl local up --detach`, or check endpoint.json.', 'ENDPOINT_DOWN');
  if (THROTTLED.has(err.code)) return new UserError(`The broker at ${endpoint.host}:${endpoint.port} throttled ${clientId}: ${err.message}.`, 'AWS IoT allows 1 CONNECT per second per client id: connect less often, or wait a second.', 'CONNECT_THROTTLED');
  return new UserError(`The broker at ${endpoint.host}:${endpoint.port} refused ${clientId}: ${err.message}`, `Check the certificate with \`iotctl device show ${creds.thingName}\` (revoked?) and that the client id is the thing name.`, 'CONNECT_REFUSED');
}

export interface PublishResult {
  published: number;
  failed: number;
  seconds: number;
  ratePerSecond: number;
}

/** Publish `count` messages, paced to `rate` per second (0 = as fast as the broker acknowledges). */
export async function publishMessages(
  client: MqttClient,
  opts: { topic: string; payload: string; qos: 0 | 1; count: number; rate: number; properties?: PublishProperties; onProgress?: (n: number) => void },
): Promise<PublishResult> {
  const started = performance.now();
  let published = 0;
  let failed = 0;
  let firstError: Error | undefined;
  const inflight = new Set<Promise<void>>();
  const window = 500;
  // mqtt.js leaves in-flight publishes pending when the broker closes the connection (as AWS IoT does on a
  // denied publish), so a close settles them all as failed.
  let closed = false;
  const whenClosed = new Promise<void>((resolve) => client.once('close', () => { closed = true; resolve(); }));
  for (let i = 0; i < opts.count; i++) {
    if (opts.rate > 0) {
      const due = started + (i * 1000) / opts.rate;
      const wait = due - performance.now();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    }
    if (closed) break;
    const p: Promise<void> = Promise.race([
      client.publishAsync(opts.topic, expandPayload(opts.payload, i + 1), { qos: opts.qos, ...(opts.properties && { properties: opts.properties }) }),
      whenClosed.then(() => { throw new Error('the broker closed the connection'); }),
    ])
      .then(() => { published++; opts.onProgress?.(published); })
      .catch((e: Error) => { failed++; firstError ??= e; })
      .finally(() => inflight.delete(p));
    inflight.add(p);
    if (inflight.size >= window) await Promise.race(inflight);
  }
  await Promise.all(inflight);
  const seconds = (performance.now() - started) / 1000;
  if (published === 0 && (failed > 0 || closed)) {
    throw new UserError(`No message was accepted on ${opts.topic}${firstError ? `: ${firstError.message}` : ' (the broker closed the connection)'}.`, 'The device policy probably denies this topic: devices publish only on their own telemetry topic (see `iotctl device show`).', 'PUBLISH_DENIED');
  }
  return { published, failed: failed + (opts.count - published - failed), seconds, ratePerSecond: published / Math.max(seconds, 1e-6) };
}

/** End the session; mqtt.js's endAsync never settles on a connection the broker already closed. */
export async function disconnect(client: MqttClient): Promise<void> {
  if (!client.connected) {
    client.end(true);
    return;
  }
  await Promise.race([client.endAsync().catch(() => {}), new Promise((r) => setTimeout(r, 3000).unref())]);
}
