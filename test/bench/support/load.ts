import mqtt, { type MqttClient } from 'mqtt';

export interface LoadClient {
  clientId: string;
  cert?: string;
  key?: string;
}

/** Connect `clients` and publish `total` QoS1 messages of `bytes` bytes, `window` in flight per client. Returns msg/s. */
export async function qos1Load(opts: { protocol: 'mqtts' | 'mqtt'; port: number; ca?: string; clients: LoadClient[]; topic: (c: LoadClient) => string; total: number; bytes: number; window?: number }): Promise<number> {
  const connected: MqttClient[] = await Promise.all(
    opts.clients.map((c) =>
      mqtt.connectAsync({ protocol: opts.protocol, host: '127.0.0.1', port: opts.port, ca: opts.ca, cert: c.cert, key: c.key, clientId: c.clientId, reconnectPeriod: 0, rejectUnauthorized: opts.protocol === 'mqtts' }),
    ),
  );
  const payload = Buffer.from(JSON.stringify({ temperature: 21.5, humidity: 40, pad: 'x'.repeat(Math.max(0, opts.bytes - 48)) }).slice(0, opts.bytes));
  const perClient = Math.ceil(opts.total / connected.length);
  const window = opts.window ?? 10;
  const started = performance.now();
  await Promise.all(
    connected.map(async (client, i) => {
      const topic = opts.topic(opts.clients[i]!);
      let sent = 0;
      const lane = async () => {
        while (sent < perClient) {
          sent++;
          await client.publishAsync(topic, payload, { qos: 1 });
        }
      };
      await Promise.all(Array.from({ length: window }, lane));
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  await Promise.all(connected.map((c) => c.endAsync()));
  return (perClient * connected.length) / seconds;
}

export const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
