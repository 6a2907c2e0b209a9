import { connect as tlsConnect } from 'node:tls';
import { connect as tcpConnect, type Socket } from 'node:net';
import { connectPacket, publishPacket } from '../../helpers/raw-mqtt.js';

export interface LoadClient {
  clientId: string;
  cert?: string;
  key?: string;
}

// A minimal MQTT 3.1.1 QoS1 publisher over raw sockets (test/helpers/raw-mqtt.ts builds the packets): mqtt.js
// costs more CPU per message than the brokers being measured, so with it the load generator, not the broker,
// would set the figure.
/** Calls onPacket(type, body) for each complete packet in the byte stream. */
function packetReader(onPacket: (type: number, body: Buffer) => void) {
  let buf: Buffer = Buffer.alloc(0);
  return (chunk: Buffer) => {
    buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
    for (;;) {
      if (buf.length < 2) return;
      let len = 0, mul = 1, i = 1;
      for (;; i++) {
        if (i >= buf.length) return;
        len += (buf[i]! & 0x7f) * mul;
        mul *= 128;
        if (!(buf[i]! & 0x80)) break;
      }
      const end = i + 1 + len;
      if (buf.length < end) return;
      onPacket(buf[0]! >> 4, buf.subarray(i + 1, end));
      buf = buf.subarray(end);
    }
  };
}

async function openSession(opts: { protocol: 'mqtts' | 'mqtt'; port: number; ca?: string }, c: LoadClient): Promise<{ socket: Socket; onPacket: (fn: (type: number, body: Buffer) => void) => void }> {
  const socket: Socket = opts.protocol === 'mqtts'
    ? tlsConnect({ host: '127.0.0.1', port: opts.port, ca: opts.ca, cert: c.cert, key: c.key, servername: 'localhost' })
    : tcpConnect({ host: '127.0.0.1', port: opts.port });
  socket.setNoDelay(true);
  let handler: (type: number, body: Buffer) => void = () => {};
  socket.on('data', packetReader((t, b) => handler(t, b)));
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.once('close', () => reject(new Error(`${c.clientId}: connection closed`)));
    handler = (type, body) => (type === 2 && body[1] === 0 ? resolve() : reject(new Error(`${c.clientId}: CONNACK ${body[1]}`)));
    socket.once(opts.protocol === 'mqtts' ? 'secureConnect' : 'connect', () => socket.write(connectPacket(c.clientId)));
  });
  return { socket, onPacket: (fn) => (handler = fn) };
}

/** Connect `clients` and publish `total` QoS1 messages of `bytes` bytes, `window` unacknowledged per client. Returns acked msg/s. */
export async function qos1Load(opts: { protocol: 'mqtts' | 'mqtt'; port: number; ca?: string; clients: LoadClient[]; topic: (c: LoadClient) => string; total: number; bytes: number; window?: number }): Promise<number> {
  const sessions = await Promise.all(opts.clients.map((c) => openSession(opts, c)));
  const payload = Buffer.from(JSON.stringify({ temperature: 21.5, humidity: 40, pad: 'x'.repeat(opts.bytes) }).slice(0, opts.bytes));
  const perClient = Math.ceil(opts.total / sessions.length);
  const window = opts.window ?? 20;
  const started = performance.now();
  await Promise.all(
    sessions.map((s, i) => new Promise<void>((resolve, reject) => {
      const topic = opts.topic(opts.clients[i]!);
      let sent = 0;
      let acked = 0;
      const send = (n: number) => {
        const packets: Buffer[] = [];
        for (let k = 0; k < n && sent < perClient; k++) packets.push(publishPacket(topic, payload, { qos: 1, id: (sent++ % 65535) + 1 }));
        if (packets.length) s.socket.write(Buffer.concat(packets));
      };
      s.socket.once('close', () => acked < perClient && reject(new Error(`${opts.clients[i]!.clientId}: closed after ${acked} acks`)));
      s.onPacket((type) => {
        if (type !== 4) return;
        acked++;
        if (acked === perClient) resolve();
        else send(1);
      });
      send(window);
    })),
  );
  const seconds = (performance.now() - started) / 1000;
  for (const s of sessions) s.socket.end(Buffer.from([0xe0, 0]));
  return (perClient * sessions.length) / seconds;
}

export const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
