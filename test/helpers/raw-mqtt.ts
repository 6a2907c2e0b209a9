// A minimal MQTT 3.1.1 client over a raw TLS socket, for tests and benchmarks that must send what a well-behaved
// client library refuses to (wildcards in a PUBLISH topic, a 64 MB declared length, QoS 2) and see exactly what the
// broker answers: CONNACK codes, PUBACK, SUBACK, or the connection closing.
import { connect as tlsConnect, type TLSSocket } from 'node:tls';

export interface RawCredentials {
  cert: string;
  key: string;
  ca: string;
}

export interface RawPacket {
  type: number;
  flags: number;
  body: Buffer;
}

export function remainingLength(n: number): Buffer {
  const out: number[] = [];
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    out.push(byte);
  } while (n > 0);
  return Buffer.from(out);
}

const str = (s: string | Buffer) => {
  const b = Buffer.isBuffer(s) ? s : Buffer.from(s);
  return Buffer.concat([Buffer.from([b.length >> 8, b.length & 0xff]), b]);
};
const packet = (first: number, body: Buffer) => Buffer.concat([Buffer.from([first]), remainingLength(body.length), body]);

export function connectPacket(clientId: string, opts: { will?: { topic: string; payload: string; qos?: number; retain?: boolean }; keepalive?: number } = {}): Buffer {
  const w = opts.will;
  const flags = 0x02 | (w ? 0x04 | ((w.qos ?? 0) << 3) | (w.retain ? 0x20 : 0) : 0);
  const parts = [str('MQTT'), Buffer.from([4, flags, 0, opts.keepalive ?? 60]), str(clientId)];
  if (w) parts.push(str(w.topic), str(w.payload));
  return packet(0x10, Buffer.concat(parts));
}

export function publishPacket(topic: string, payload: Buffer | string, opts: { qos?: number; retain?: boolean; id?: number } = {}): Buffer {
  const qos = opts.qos ?? 0;
  const id = opts.id ?? 1;
  const body = Buffer.concat([str(topic), qos ? Buffer.from([id >> 8, id & 0xff]) : Buffer.alloc(0), Buffer.isBuffer(payload) ? payload : Buffer.from(payload)]);
  return packet(0x30 | (qos << 1) | (opts.retain ? 1 : 0), body);
}

export function subscribePacket(filter: string, qos: number, id = 1): Buffer {
  return packet(0x82, Buffer.concat([Buffer.from([id >> 8, id & 0xff]), str(filter), Buffer.from([qos])]));
}

/** A raw session: packets the broker sends are queued for `next()`; `closed` resolves when the socket closes. */
export class RawClient {
  readonly packets: RawPacket[] = [];
  readonly closed: Promise<void>;
  private waiters: (() => void)[] = [];
  private buf: Buffer = Buffer.alloc(0);
  isClosed = false;

  private constructor(readonly socket: TLSSocket) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', () => {});
    this.closed = new Promise((resolve) => socket.once('close', () => {
      this.isClosed = true;
      resolve();
      this.wake();
    }));
  }

  /** Opens TLS only (no CONNECT). */
  static async open(port: number, creds: RawCredentials): Promise<RawClient> {
    const socket = tlsConnect({ host: '127.0.0.1', port, ca: creds.ca, cert: creds.cert, key: creds.key, servername: 'localhost' });
    socket.setNoDelay(true);
    await new Promise<void>((resolve, reject) => {
      socket.once('secureConnect', () => resolve());
      socket.once('error', reject);
      socket.once('close', () => reject(new Error('closed during the TLS handshake')));
    });
    return new RawClient(socket);
  }

  /** TLS + CONNECT; resolves with the client and the CONNACK return code (or -1 when closed without one). */
  static async connect(port: number, creds: RawCredentials, clientId: string, opts: Parameters<typeof connectPacket>[1] = {}): Promise<{ client: RawClient; returnCode: number }> {
    const client = await RawClient.open(port, creds);
    client.socket.write(connectPacket(clientId, opts));
    const connack = await client.next(5000);
    return { client, returnCode: connack && connack.type === 2 ? connack.body[1]! : -1 };
  }

  /** The next packet from the broker, or undefined when the connection closed (or after timeoutMs). */
  async next(timeoutMs = 2000): Promise<RawPacket | undefined> {
    const deadline = Date.now() + timeoutMs;
    while (!this.packets.length && !this.isClosed && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.max(1, deadline - Date.now()));
        this.waiters.push(() => { clearTimeout(t); resolve(); });
      });
    }
    return this.packets.shift();
  }

  write(data: Buffer): boolean {
    return this.socket.write(data);
  }

  end(): void {
    if (!this.isClosed) this.socket.end(Buffer.from([0xe0, 0]));
  }

  destroy(): void {
    this.socket.destroy();
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  private onData(chunk: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    for (;;) {
      if (this.buf.length < 2) break;
      let len = 0;
      let mul = 1;
      let i = 1;
      let complete = false;
      for (; i < this.buf.length && i < 5; i++) {
        len += (this.buf[i]! & 0x7f) * mul;
        mul *= 128;
        if (!(this.buf[i]! & 0x80)) { complete = true; break; }
      }
      if (!complete) break;
      const end = i + 1 + len;
      if (this.buf.length < end) break;
      this.packets.push({ type: this.buf[0]! >> 4, flags: this.buf[0]! & 0x0f, body: this.buf.subarray(i + 1, end) });
      this.buf = this.buf.subarray(end);
    }
    this.wake();
  }
}

/** Topic and payload of a PUBLISH the broker sent. */
export function parsePublish(p: RawPacket): { topic: string; payload: Buffer } {
  const n = p.body.readUInt16BE(0);
  const qos = (p.flags >> 1) & 3;
  return { topic: p.body.subarray(2, 2 + n).toString(), payload: p.body.subarray(2 + n + (qos ? 2 : 0)) };
}
