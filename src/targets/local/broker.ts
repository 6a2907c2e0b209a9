import { Aedes, type Client, type AuthenticateError, type AedesPublishPacket, type PublishPacket, type Subscription } from 'aedes';
import { createServer as createTlsServer, type Server as TlsServer, type TLSSocket } from 'node:tls';
import { createServer as createTcpServer, type Server as TcpServer, type AddressInfo, type Socket } from 'node:net';
import { evaluatePolicies, iotArn } from '../../iot/policy/index.js';
import type { Registry, Principal } from './registry.js';
import type { IngressLog } from './ingress.js';
import { count, newCounter, RateMeter, type ReasonCounter } from './counters.js';

/** AWS IoT Core refuses payloads over 128 KB. */
export const MAX_PAYLOAD_BYTES = 128 * 1024;

export interface BrokerOptions {
  host: string;
  port: number;
  tls: { key: string; cert: string; ca: string };
  registry: Registry;
  /** When set, every accepted publish is durably logged before its QoS1 PUBACK. */
  ingress?: IngressLog;
  /** Benchmarks only: a plain-TCP listener without authentication, to measure TLS + policy overhead. */
  plainTcpPort?: number;
  log?: (line: string) => void;
}

interface Session {
  principal: Principal;
  certificateId: string;
  /** Cached decisions per action, keyed by topic/filter/client id: one map lookup per publish. */
  decisions: Map<string, Map<string, boolean>>;
}

export interface BrokerStats {
  connectedClients: number;
  connectionsAccepted: ReasonCounter;
  connectionsRefused: ReasonCounter;
  publishesAccepted: ReasonCounter;
  publishesDenied: ReasonCounter;
  subscriptionsDenied: ReasonCounter;
  deliveriesDenied: ReasonCounter;
  publishesPerSecond: number;
}

class AuthError extends Error {
  constructor(readonly reason: string, message: string, readonly returnCode = 5) {
    super(message);
  }
}

/**
 * The local IoT Core: aedes (MQTT 3.1.1) behind a TLS server that requires client certificates from the
 * local CA. Certificate -> principal -> thing; IoT policies are enforced on CONNECT, PUBLISH, SUBSCRIBE
 * and on delivery (iot:Receive), as AWS does.
 */
export class Broker {
  private aedes!: Aedes;
  private tlsServer!: TlsServer;
  private tcpServer?: TcpServer;
  private readonly sessions = new WeakMap<Client, Session>();
  private readonly clients = new Set<Client>();
  private readonly stats = {
    connectionsAccepted: newCounter(),
    connectionsRefused: newCounter(),
    publishesAccepted: newCounter(),
    publishesDenied: newCounter(),
    subscriptionsDenied: newCounter(),
    deliveriesDenied: newCounter(),
  };
  readonly rate = new RateMeter();
  private readonly log: (line: string) => void;

  constructor(private readonly opts: BrokerOptions) {
    this.log = opts.log ?? (() => {});
  }

  async start(): Promise<{ port: number; plainTcpPort?: number }> {
    this.aedes = await Aedes.createBroker({
      authenticate: (client, _u, _p, cb) => this.authenticate(client, cb),
      authorizePublish: (client, packet, cb) => this.authorizePublish(client, packet, cb),
      authorizeSubscribe: (client, sub, cb) => this.authorizeSubscribe(client, sub, cb),
      authorizeForward: (client, packet) => this.authorizeForward(client, packet),
    });
    this.aedes.on('clientReady', (client) => {
      this.clients.add(client);
      count(this.stats.connectionsAccepted, this.sessions.has(client) ? 'certificate' : 'plainTcp');
    });
    this.aedes.on('clientDisconnect', (client) => this.clients.delete(client));
    // rejectUnauthorized is false so the refusal can be counted with its reason; unauthorized sockets
    // are destroyed before a single MQTT byte is read.
    this.tlsServer = createTlsServer(
      { key: this.opts.tls.key, cert: this.opts.tls.cert, ca: this.opts.tls.ca, requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.2' },
      (socket) => {
        if (!socket.authorized) {
          const code = String(socket.authorizationError ?? 'UNKNOWN');
          const reason = /NO_PEER_CERTIFICATE|PEER_DID_NOT_RETURN/i.test(code) || !socket.getPeerCertificate()?.raw ? 'noClientCertificate' : /EXPIRED/.test(code) ? 'certificateExpired' : 'untrustedCertificate';
          count(this.stats.connectionsRefused, reason);
          this.log(`connection refused from ${socket.remoteAddress}: ${reason} (${code})`);
          socket.destroy();
          return;
        }
        this.aedes.handle(coalesceWrites(socket));
      },
    );
    this.tlsServer.on('tlsClientError', (err) => {
      count(this.stats.connectionsRefused, tlsReason(err));
      this.log(`connection refused: ${err.message}`);
    });
    await listen(this.tlsServer, this.opts.port, this.opts.host);
    const port = (this.tlsServer.address() as AddressInfo).port;
    let plainTcpPort: number | undefined;
    if (this.opts.plainTcpPort !== undefined) {
      this.tcpServer = createTcpServer((socket) => this.aedes.handle(coalesceWrites(socket)));
      await listen(this.tcpServer, this.opts.plainTcpPort, this.opts.host);
      plainTcpPort = (this.tcpServer.address() as AddressInfo).port;
    }
    return { port, plainTcpPort };
  }

  async stop(): Promise<void> {
    this.rate.stop();
    for (const client of this.clients) client.close();
    await Promise.all([this.tlsServer && close(this.tlsServer), this.tcpServer && close(this.tcpServer)]);
    await new Promise<void>((resolve) => (this.aedes ? this.aedes.close(() => resolve()) : resolve()));
  }

  snapshot(): BrokerStats {
    return { connectedClients: this.clients.size, ...structuredClone(this.stats), publishesPerSecond: this.rate.perSecond() };
  }

  /** Publish from the platform itself (republish actions): no policy check, as AWS's rules engine. */
  publish(topic: string, payload: Buffer, qos: 0 | 1 = 0): Promise<void> {
    return new Promise((resolve, reject) =>
      this.aedes.publish({ cmd: 'publish', topic, payload, qos, retain: false, dup: false }, (err) => (err ? reject(err) : resolve())),
    );
  }

  /**
   * The registry changed: forget cached decisions, and drop connections whose certificate is no longer
   * active (revoked, deleted) at once.
   */
  refresh(): void {
    for (const client of this.clients) {
      const session = this.sessions.get(client);
      if (!session) continue;
      const principal = this.opts.registry.principal(session.certificateId);
      if (!principal || principal.certificate.status !== 'ACTIVE' || principal.thing?.name !== session.principal.thing?.name) {
        this.log(`disconnecting ${client.id}: certificate ${principal ? principal.certificate.status.toLowerCase() : 'deleted'}`);
        client.close();
        continue;
      }
      session.principal = principal;
    }
  }

  private authenticate(client: Client, cb: (error: AuthenticateError | null, success: boolean | null) => void): void {
    try {
      const socket = client.conn as unknown as TLSSocket;
      if (typeof socket.getPeerCertificate !== 'function') {
        // The benchmark-only plain TCP listener.
        cb(null, true);
        return;
      }
      const cert = socket.getPeerCertificate();
      const certificateId = cert.fingerprint256.replace(/:/g, '').toLowerCase();
      const principal = this.opts.registry.principal(certificateId);
      if (!principal) throw new AuthError('unknownCertificate', 'certificate is not registered');
      if (principal.certificate.status !== 'ACTIVE') throw new AuthError(`certificate${cap(principal.certificate.status)}`, `certificate is ${principal.certificate.status}`);
      const session: Session = { principal, certificateId, decisions: new Map() };
      const attributes = connectAttributes(client);
      if (!this.allowed(client, session, 'iot:Connect', 'client', client.id, attributes)) {
        // A CONNECT the policy would allow without its persistent session or will is refused for them.
        if (attributes.length && this.allowed(client, session, 'iot:Connect', 'client', client.id, [])) {
          throw new AuthError('connectAttributesDenied', `policy does not allow client id "${client.id}" to connect with ${attributes.join(' and ')}`);
        }
        throw new AuthError('policyDenied', `policy does not allow client id "${client.id}" to connect`);
      }
      this.sessions.set(client, session);
      cb(null, true);
    } catch (e) {
      const err = e instanceof AuthError ? e : new AuthError('internalError', (e as Error).message);
      count(this.stats.connectionsRefused, err.reason);
      this.log(`connection refused for client ${client.id}: ${err.message}`);
      const authError = Object.assign(new Error(err.message), { returnCode: err.returnCode }) as AuthenticateError;
      cb(authError, false);
    }
  }

  private authorizePublish(client: Client | null, packet: PublishPacket, cb: (error?: Error | null) => void): void {
    if (!client) return cb(null);
    const session = this.sessions.get(client);
    const deny = (reason: string, message: string) => {
      count(this.stats.publishesDenied, reason);
      this.log(`publish denied for ${client.id} on ${packet.topic}: ${message}`);
      // AWS IoT disconnects an MQTT 3.1.1 client whose publish is not authorized.
      cb(new Error(message));
    };
    const basicIngest = isBasicIngest(packet.topic);
    if (packet.topic.startsWith('$') && !basicIngest) return deny('reservedTopic', 'topics starting with $ are reserved');
    if (basicIngest && !/^\$aws\/rules\/[^/]+/.test(packet.topic)) return deny('invalidTopic', 'a Basic Ingest topic names its rule: $aws/rules/<ruleName>/<topic>');
    const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload);
    if (payload.length > MAX_PAYLOAD_BYTES) return deny('payloadTooLarge', `payload of ${payload.length} bytes exceeds the 128 KB limit`);
    if (session && !this.allowed(client, session, 'iot:Publish', 'topic', packet.topic)) return deny('policyDenied', 'policy does not allow iot:Publish');
    // Basic Ingest goes to the rules engine only: never retained, never delivered (see authorizeForward).
    if (basicIngest) packet.retain = false;
    const accept = () => {
      count(this.stats.publishesAccepted, basicIngest ? `basicIngestQos${packet.qos}` : `qos${packet.qos}`);
      this.rate.mark();
      cb(null);
    };
    if (!this.opts.ingress) return accept();
    this.opts.ingress
      .append({ topic: packet.topic, clientId: client.id, principal: session?.certificateId ?? '', qos: packet.qos, payload })
      .then(accept)
      .catch((e: Error & { code?: string }) => {
        // No PUBACK: the client publishes again. A full disk gets its own reason, as the one thing to fix.
        count(this.stats.publishesDenied, e.code === 'SQLITE_FULL' ? 'diskFull' : 'ingressUnavailable');
        this.log(`ingress log write failed: ${e.message}`);
        cb(e);
      });
  }

  private authorizeSubscribe(client: Client, sub: Subscription, cb: (error: Error | null, subscription?: Subscription | null) => void): void {
    const session = this.sessions.get(client);
    // AWS: "Your devices and rules can't subscribe to Basic Ingest reserved topics."
    if (isBasicIngest(sub.topic)) {
      count(this.stats.subscriptionsDenied, 'reservedTopic');
      this.log(`subscribe denied for ${client.id} on ${sub.topic}: Basic Ingest topics cannot be subscribed to`);
      return cb(null, null);
    }
    if (session && !this.allowed(client, session, 'iot:Subscribe', 'topicfilter', sub.topic)) {
      count(this.stats.subscriptionsDenied, 'policyDenied');
      this.log(`subscribe denied for ${client.id} on ${sub.topic}`);
      return cb(null, null); // SUBACK 0x80 for this filter
    }
    cb(null, sub);
  }

  private authorizeForward(client: Client, packet: AedesPublishPacket): AedesPublishPacket | null {
    if (isBasicIngest(packet.topic)) return null;
    const session = this.sessions.get(client);
    if (!session || packet.topic.startsWith('$SYS')) return session ? null : packet;
    if (this.allowed(client, session, 'iot:Receive', 'topic', packet.topic)) return packet;
    count(this.stats.deliveriesDenied, 'policyDenied');
    return null;
  }

  private allowed(client: Client, session: Session, action: string, kind: 'client' | 'topic' | 'topicfilter', name: string, attributes?: readonly string[]): boolean {
    if (attributes) return this.evaluate(client, session, action, kind, name, attributes);
    let cache = session.decisions.get(action);
    if (!cache) session.decisions.set(action, (cache = new Map()));
    let allowed = cache.get(name);
    if (allowed === undefined) {
      allowed = this.evaluate(client, session, action, kind, name);
      if (cache.size > 10_000) cache.clear();
      cache.set(name, allowed);
    }
    return allowed;
  }

  private evaluate(client: Client, session: Session, action: string, kind: 'client' | 'topic' | 'topicfilter', name: string, connectAttributes?: readonly string[]): boolean {
    const thing = session.principal.thing;
    const decision = evaluatePolicies(session.principal.policies.map((p) => p.document), {
      action, resource: iotArn(kind, name), clientId: client.id, thingName: thing?.name, thingTypeName: thing?.thingType,
      thingAttributes: thing?.attributes, isAttached: Boolean(thing), connectAttributes,
    });
    return decision.decision === 'allow';
  }
}

/**
 * aedes writes every PUBACK on its own; corking the socket until the current tick's work is done sends the
 * acknowledgements of one read (or one ingress commit) in a single TLS record and syscall.
 */
function coalesceWrites<S extends Socket>(socket: S): S {
  const write = socket.write.bind(socket) as (...args: unknown[]) => boolean;
  let corked = false;
  const uncork = () => {
    corked = false;
    socket.uncork();
  };
  socket.write = ((...args: unknown[]) => {
    if (!corked) {
      corked = true;
      socket.cork();
      process.nextTick(uncork);
    }
    return write(...args);
  }) as S['write'];
  return socket;
}

/** `$aws/rules/<ruleName>/...`: a message for one rule, without the publish/subscribe broker (Basic Ingest). */
export function isBasicIngest(topic: string): boolean {
  return topic.startsWith('$aws/rules/');
}

/**
 * `iot:ConnectAttributes` of a CONNECT, as AWS IoT Core derives them: `PersistentConnect` for a session
 * that is not clean, `LastWill` when the CONNECT carries a will message.
 */
export function connectAttributes(client: Client): string[] {
  const { clean, _will: will } = client as Client & { clean?: boolean; _will?: unknown };
  const attributes: string[] = [];
  if (clean === false) attributes.push('PersistentConnect');
  if (will) attributes.push('LastWill');
  return attributes;
}

function cap(s: string): string {
  return s.charAt(0) + s.slice(1).toLowerCase();
}

function tlsReason(err: Error & { code?: string }): string {
  const m = `${err.code ?? ''} ${err.message}`;
  if (/PEER_DID_NOT_RETURN_A_CERTIFICATE|NO_CERTIFICATE/i.test(m)) return 'noClientCertificate';
  if (/CERTIFICATE_VERIFY_FAILED|UNKNOWN_CA|unknown ca|certificate verify|self.signed|unable to get/i.test(m)) return 'untrustedCertificate';
  if (/ECONNRESET|socket hang up|disconnected before/i.test(m)) return 'handshakeAborted';
  return 'tlsHandshake';
}

function listen(server: TlsServer | TcpServer, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (e: NodeJS.ErrnoException) => reject(e);
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

function close(server: TlsServer | TcpServer): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}
