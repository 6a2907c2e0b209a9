import { Aedes, type Client, type AuthenticateError, type AedesPublishPacket, type PublishPacket, type Subscription } from 'aedes';
import { createServer as createTlsServer, TLSSocket, type Server as TlsServer } from 'node:tls';
import { createServer as createTcpServer, type Server as TcpServer, type AddressInfo, type Socket } from 'node:net';
import { evaluatePolicies, iotArn } from '../../iot/policy/index.js';
import type { Registry, Principal } from './registry.js';
import type { IngressLog } from './ingress.js';
import { count, KeyedInterval, LogThrottle, newCounter, RateMeter, type ReasonCounter } from './counters.js';
import { publishTopicProblem, sizeProblem } from '../../iot/topics.js';
import { compileTopicMatcher } from '../../iot/sql/topics.js';
import { MAX_SESSION_EXPIRY_S, MAX_USER_PROPERTIES_BYTES, TOPIC_ALIAS_MAXIMUM, userPropertiesBytes } from '../../iot/mqtt5.js';
import type { MqttProperties } from './ingress.js';
import mqttPacket from 'mqtt-packet';
import { ProvisioningError, provisioningRequest, type ProvisioningRequest } from '../../iot/provisioning.js';
import type { FleetProvisioning } from './provisioning.js';
import { encodeCbor } from '../../iot/cbor.js';

/** AWS IoT Core refuses payloads over 128 KB. */
export const MAX_PAYLOAD_BYTES = 128 * 1024;
/**
 * The largest MQTT remaining length read: a 128 KB payload with a 256-byte topic, its length fields and packet id
 * fit. A packet declaring more is refused from its fixed header, before its body is read.
 */
export const MAX_PACKET_BYTES = MAX_PAYLOAD_BYTES + 512;
/** AWS IoT Core: "1 MQTT CONNECT operation per second" per client id. */
export const CONNECT_INTERVAL_MS = 1000;
export const DEFAULT_MAX_CONNECTIONS = 1000;
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;
/** MQTT 5 reason codes the broker sends itself. */
export const REASON = { notAuthorized: 0x87, serverBusy: 0x89, sessionTakenOver: 0x8e, packetTooLarge: 0x95, qosNotSupported: 0x9b } as const;
/** `$share/<group>/<filter>` (MQTT 5 shared subscription). */
const SHARE = /^\$share\/([^/#+]+)\/(.+)$/;

export interface BrokerOptions {
  host: string;
  port: number;
  tls: { key: string; cert: string; ca: string };
  registry: Registry;
  /** When set, every accepted publish is durably logged before its QoS1 PUBACK. */
  ingress?: IngressLog;
  /** Benchmarks only: a plain-TCP listener without authentication, to measure TLS + policy overhead. */
  plainTcpPort?: number;
  /** Open connections accepted; more are closed at once, before TLS (local.maxConnections). */
  maxConnections?: number;
  /** TLS handshake, then CONNECT, each within this time (local.handshakeTimeoutMs). */
  handshakeTimeoutMs?: number;
  log?: (line: string) => void;
  /** Serves the device provisioning MQTT API (fleet provisioning by claim) when set. */
  provisioning?: FleetProvisioning;
}

interface Session {
  principal: Principal;
  certificateId: string;
  /** Cached decisions per action, keyed by topic/filter/client id: one map lookup per publish. */
  decisions: Map<string, Map<string, boolean>>;
  /** The certificate was revoked or deleted: nothing more is published for this client, its Will included. */
  revoked?: boolean;
  /** MQTT 5 shared subscriptions this client is a member of. */
  shares?: ShareGroup[];
}

/** One `$share/<group>/<filter>`: each message matching the filter goes to one member, in turn. */
interface ShareGroup {
  key: string;
  filter: string;
  matches: (topic: string) => boolean;
  members: Client[];
  next: number;
  /** The message last chosen for (broker id and counter) and the member it went to. */
  lastMessage?: string;
  chosen?: Client;
}

type AedesClient = Client & { _parser: NodeJS.EventEmitter; subscriptions: object; duplicates: object };

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

/** A refusal the broker already counted and logged, so the client error it becomes is not counted again. */
const COUNTED = Symbol('counted');
const counted = (message: string) => Object.assign(new Error(message), { [COUNTED]: true });

/** aedes's own refusals (before our hooks run), by message: counted under our reasons. */
const AEDES_REFUSALS: [RegExp, 'publishesDenied' | 'connectionsRefused', string][] = [
  [/[#+] is not allowed in PUBLISH/, 'publishesDenied', 'wildcardInTopic'],
  [/empty topic/, 'publishesDenied', 'emptyTopic'],
  [/too many levels/, 'publishesDenied', 'tooManyLevels'],
  [/connect did not arrive in time/, 'connectionsRefused', 'connectTimeout'],
];

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
  /** Certificate id (SHA-256 fingerprint) of each authorized TLS socket, read once at the handshake. */
  private readonly certificateIds = new WeakMap<object, string>();
  private readonly clients = new Set<Client>();
  /** MQTT 5 shared subscriptions by `<group>/<filter>`. */
  private readonly shareGroups = new Map<string, ShareGroup>();
  private readonly connects = new KeyedInterval(CONNECT_INTERVAL_MS);
  /** When each certificate's connection was last written to the registry: at most one write a minute per certificate. */
  private readonly connectionRecorded = new Map<string, number>();
  private readonly throttled: LogThrottle;
  private readonly maxConnections: number;
  private readonly handshakeTimeoutMs: number;
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
    // Refusals are driven by peers: a flood of them is summed up instead of logged one line each.
    this.throttled = new LogThrottle(this.log);
    this.maxConnections = opts.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
    this.handshakeTimeoutMs = opts.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS;
  }

  async start(): Promise<{ port: number; plainTcpPort?: number }> {
    this.aedes = await Aedes.createBroker({
      connectTimeout: this.handshakeTimeoutMs,
      authenticate: (client, _u, _p, cb) => this.authenticate(client, cb),
      authorizePublish: (client, packet, cb) => this.authorizePublish(client, packet, cb),
      authorizeSubscribe: (client, sub, cb) => this.authorizeSubscribe(client, sub, cb),
      authorizeForward: (client, packet) => this.authorizeForward(client, packet),
      // MQTT 5 only (a 3.1.1 client never sees them).
      topicAliasMaximum: TOPIC_ALIAS_MAXIMUM,
    });
    // GHSA-52qw-whmv-87c5 (fixed in aedes 1.2, not in 2.0.0-beta.1): maps keyed by client ids from the wire must
    // not inherit Object's members ('constructor', '__proto__').
    Object.assign(this.aedes, { clients: Object.create(null), brokers: Object.create(null) });
    // `connected` counts live sockets: a client is added once ready and removed when its socket closes, which
    // also covers a client that closed between authentication and ready (aedes still emits clientReady then).
    this.aedes.on('clientReady', (client) => {
      if (client.closed || client.conn.destroyed) return;
      this.clients.add(client);
      client.conn.once('close', () => this.clients.delete(client));
      count(this.stats.connectionsAccepted, this.sessions.has(client) ? 'certificate' : 'plainTcp');
    });
    this.aedes.on('clientDisconnect', (client) => this.clients.delete(client));
    this.aedes.on('clientError', (client, err) => this.countAedesRefusal(client, err));
    this.aedes.on('connectionError', (client, err) => this.countAedesRefusal(client, err));
    // rejectUnauthorized is false so the refusal can be counted with its reason; unauthorized sockets
    // are destroyed before a single MQTT byte is read.
    this.tlsServer = createTlsServer(
      { key: this.opts.tls.key, cert: this.opts.tls.cert, ca: this.opts.tls.ca, requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.2', handshakeTimeout: this.handshakeTimeoutMs },
      (socket) => {
        const cert = socket.authorized ? socket.getPeerCertificate() : undefined;
        if (!socket.authorized || !cert?.fingerprint256) {
          const code = String(socket.authorizationError ?? 'UNKNOWN');
          const reason = socket.destroyed ? 'handshakeAborted' : /NO_PEER_CERTIFICATE|PEER_DID_NOT_RETURN/i.test(code) || !socket.getPeerCertificate()?.raw ? 'noClientCertificate' : /EXPIRED/.test(code) ? 'certificateExpired' : 'untrustedCertificate';
          this.refuseConnection(reason, `connection refused from ${socket.remoteAddress}: ${reason} (${code})`);
          socket.destroy();
          return;
        }
        this.certificateIds.set(socket, cert.fingerprint256.replace(/:/g, '').toLowerCase());
        // No Nagle: a request/response exchange (the provisioning MQTT API, a PUBACK awaited) otherwise waits on the
        // peer's delayed ACK, ~40 ms a turn; writes of one tick are coalesced already (coalesceWrites).
        socket.setNoDelay(true);
        this.accept(socket);
      },
    );
    // Over the cap, Node closes the new socket as it is accepted: no TLS, no memory.
    this.tlsServer.maxConnections = this.maxConnections;
    this.tlsServer.on('drop', (data?: { remoteAddress?: string }) => {
      this.refuseConnection('connectionLimit', `connection refused from ${data?.remoteAddress ?? 'unknown'}: ${this.maxConnections} connections are open (local.maxConnections)`);
    });
    this.tlsServer.on('tlsClientError', (err: Error & { code?: string }, socket: TLSSocket) => {
      // With a listener Node leaves the socket open (a silent peer would hold its descriptor forever).
      socket.destroy();
      const reason = tlsReason(err);
      this.refuseConnection(reason, `connection refused from ${socket.remoteAddress ?? 'unknown'}: ${reason} (${err.message})`);
    });
    await listen(this.tlsServer, this.opts.port, this.opts.host);
    const port = (this.tlsServer.address() as AddressInfo).port;
    let plainTcpPort: number | undefined;
    if (this.opts.plainTcpPort !== undefined) {
      this.tcpServer = createTcpServer((socket) => this.accept(socket));
      this.tcpServer.maxConnections = this.maxConnections;
      await listen(this.tcpServer, this.opts.plainTcpPort, this.opts.host);
      plainTcpPort = (this.tcpServer.address() as AddressInfo).port;
    }
    return { port, plainTcpPort };
  }

  /** Hands a socket to aedes, with the size guard, and the MQTT 5 adjustments for a client that connects with MQTT 5. */
  private accept(socket: Socket): void {
    const client = this.aedes.handle(this.guard(coalesceWrites(socket))) as unknown as AedesClient;
    // GHSA-52qw-whmv-87c5, as above: keyed by topic filters and broker ids from the wire.
    client.subscriptions = Object.create(null);
    client.duplicates = Object.create(null);
    // Sees each packet before aedes does. A 3.1.1 client drops it at its CONNECT: its packets go to aedes untouched.
    const onPacket = (packet: mqttPacket.Packet) => {
      if (packet.cmd !== 'connect') return this.adjustV5(client, packet);
      if (packet.protocolVersion !== 5) return void client._parser.off('packet', onPacket);
      v5Streams.set(socket, clampSessionExpiry(packet.properties));
    };
    client._parser.prependListener('packet', onPacket);
  }

  /**
   * An MQTT 5 packet as AWS IoT Core takes it: QoS 2 subscriptions are granted QoS 1 (AWS's maximum QoS, which an
   * MQTT 5 server may grant instead), `$share/<group>/<filter>` becomes a subscription to the filter that this broker
   * shares out (aedes 2 refuses shared subscriptions), and session expiry is held to AWS's.
   */
  private adjustV5(client: Client, packet: mqttPacket.Packet): void {
    if (packet.cmd === 'subscribe') {
      for (const sub of packet.subscriptions as SharedSubscription[]) {
        if (sub.qos === 2) sub.qos = 1;
        const share = SHARE.exec(sub.topic);
        if (share) {
          sub.share = { name: sub.topic, key: `${share[1]}/${share[2]}` };
          sub.topic = share[2]!;
        }
      }
    } else if (packet.cmd === 'unsubscribe') {
      packet.unsubscriptions = packet.unsubscriptions.map((filter) => {
        const share = SHARE.exec(filter);
        if (!share) return filter;
        this.leaveShare(client, `${share[1]}/${share[2]}`);
        return share[2]!;
      });
    } else if (packet.cmd === 'disconnect') clampSessionExpiry(packet.properties);
  }

  /** Refuses a packet whose declared length is over MAX_PACKET_BYTES, from its fixed header, and closes the connection. */
  private guard<S extends Socket>(socket: S): S {
    return guardPacketSize(socket, MAX_PACKET_BYTES, (type, declared) => {
      const client = (socket as unknown as { client?: Client }).client;
      const who = client?.id ? `client ${client.id}` : `a connection from ${socket.remoteAddress}`;
      const what = `${PACKET_NAMES[type] ?? `packet type ${type}`} declaring ${declared} bytes (more than the ${MAX_PACKET_BYTES} bytes a 128 KB payload needs)`;
      if (type === 3) {
        count(this.stats.publishesDenied, 'payloadTooLarge');
        this.throttled.log('payloadTooLarge', `publish denied for ${who}: ${what}; connection closed`);
      } else this.refuseConnection('packetTooLarge', `connection closed for ${who}: ${what}`);
      // MQTT 5 has a reason code for it: DISCONNECT 0x95 (Packet too large), then the connection closes.
      if (client?.version === 5 && client.connected) socket.end(DISCONNECT_PACKET_TOO_LARGE, () => socket.destroy());
      else socket.destroy();
    });
  }

  private refuseConnection(reason: string, line: string): void {
    count(this.stats.connectionsRefused, reason);
    this.throttled.log(reason, line);
  }

  private countAedesRefusal(client: Client, err: Error & { [COUNTED]?: boolean }): void {
    if (!err || err[COUNTED]) return;
    const known = AEDES_REFUSALS.find(([pattern]) => pattern.test(err.message));
    if (!known) return;
    const [, counter, reason] = known;
    count(this.stats[counter], reason);
    this.throttled.log(reason, `${counter === 'publishesDenied' ? 'publish denied for' : 'connection closed for'} ${client?.id ?? 'a client'}: ${err.message}`);
  }

  async stop(): Promise<void> {
    this.rate.stop();
    this.throttled.stop();
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
        // The Will of a revoked or deleted certificate is dropped: it is the device's last publish.
        session.revoked = true;
        (client as Client & { will: unknown }).will = null;
        client.close();
        continue;
      }
      session.principal = principal;
    }
  }

  /** Rotation finishes only once the new certificate has connected: the registry keeps each certificate's last connection. */
  private recordConnection(certificateId: string): void {
    const now = Date.now();
    if (now - (this.connectionRecorded.get(certificateId) ?? -Infinity) < 60_000) return;
    this.connectionRecorded.set(certificateId, now);
    if (this.connectionRecorded.size > 100_000) this.connectionRecorded.clear();
    try {
      this.opts.registry.recordConnection(certificateId, now);
    } catch (e) {
      this.log(`could not record the connection of certificate ${certificateId.slice(0, 12)}: ${(e as Error).message}`);
    }
  }

  private authenticate(client: Client, cb: (error: AuthenticateError | null, success: boolean | null) => void): void {
    try {
      if (!(client.conn instanceof TLSSocket)) {
        // The benchmark-only plain TCP listener.
        cb(null, true);
        return;
      }
      const certificateId = this.certificateIds.get(client.conn);
      if (!certificateId) throw new AuthError('handshakeAborted', 'the connection has no verified certificate');
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
      // After authorization, so a device cannot spend another client id's allowance.
      if (!this.connects.take(client.id)) {
        throw new AuthError('connectThrottled', `client id "${client.id}" connected less than ${CONNECT_INTERVAL_MS} ms ago (AWS IoT allows 1 CONNECT per second per client id)`, 3);
      }
      this.sessions.set(client, session);
      this.recordConnection(certificateId);
      cb(null, true);
    } catch (e) {
      const err = e instanceof AuthError ? e : new AuthError('internalError', (e as Error).message);
      this.refuseConnection(err.reason, `connection refused for client ${client.id}: ${err.message}`);
      const authError = Object.assign(new Error(err.message), { returnCode: err.returnCode }) as AuthenticateError;
      cb(authError, false);
    }
  }

  private authorizePublish(client: Client | null, packet: PublishPacket, cb: (error?: Error | null) => void): void {
    if (!client) return cb(null);
    const session = this.sessions.get(client);
    const v5 = client.version === 5;
    const deny = (reason: string, message: string, disconnectWith?: number) => {
      count(this.stats.publishesDenied, reason);
      this.throttled.log(reason, `publish denied for ${client.id} on ${clip(packet.topic)}: ${message}`);
      // AWS IoT disconnects an MQTT 3.1.1 client whose publish is not authorized. An MQTT 5 client keeps its
      // connection and gets PUBACK 0x87 (aedes answers so for an error here), unless the refusal has its own
      // reason code, sent in a DISCONNECT.
      if (v5 && disconnectWith !== undefined && !client.closed) return client.disconnect({ reasonCode: disconnectWith }, () => cb(counted(message)));
      cb(counted(message));
    };
    // aedes publishes the Will after closing the client: the certificate is checked again for it.
    if (session && (session.revoked || (client.closed && !this.stillActive(session)))) return deny('certificateRevoked', 'the certificate is revoked or deleted');
    const topicProblem = publishTopicProblem(packet.topic);
    if (topicProblem) return deny(topicProblem.reason, topicProblem.message);
    const basicIngest = isBasicIngest(packet.topic);
    const provisioning = session && this.opts.provisioning ? provisioningRequest(packet.topic) : undefined;
    if (provisioning) {
      if (!this.allowed(client, session!, 'iot:Publish', 'topic', packet.topic)) return deny('policyDenied', 'policy does not allow iot:Publish');
      if (packet.qos === 2) return deny('qos2NotSupported', 'AWS IoT Core does not support QoS 2', REASON.qosNotSupported);
      // A request to the service, not a message: never logged for the rules engine, never delivered (authorizeForward).
      count(this.stats.publishesAccepted, 'provisioning');
      cb(null);
      this.provision(client, session!, provisioning, Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload), packet.topic);
      return;
    }
    if (packet.topic.startsWith('$') && !basicIngest) return deny('reservedTopic', 'topics starting with $ are reserved');
    if (basicIngest && !/^\$aws\/rules\/[^/]+/.test(packet.topic)) return deny('invalidTopic', 'a Basic Ingest topic names its rule: $aws/rules/<ruleName>/<topic>');
    const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload);
    if (payload.length > MAX_PAYLOAD_BYTES) return deny('payloadTooLarge', `payload of ${payload.length} bytes exceeds the 128 KB limit`, REASON.packetTooLarge);
    // AWS IoT Core: "does not support publishing or subscribing with QoS level 2"; no PUBREC, the connection closes
    // (MQTT 5: with 0x9B, QoS not supported, as for a QoS above the Maximum QoS its CONNACK advertised).
    if (packet.qos === 2) return deny('qos2NotSupported', 'AWS IoT Core does not support QoS 2', REASON.qosNotSupported);
    const properties = v5 ? mqttProperties(packet) : undefined;
    const userBytes = properties?.userProperties ? userPropertiesBytes(properties.userProperties) : 0;
    if (userBytes > MAX_USER_PROPERTIES_BYTES) return deny('userPropertiesTooLarge', `user properties of ${userBytes} bytes exceed the ${MAX_USER_PROPERTIES_BYTES / 1024} KB limit`, REASON.packetTooLarge);
    if (session && !this.allowed(client, session, 'iot:Publish', 'topic', packet.topic)) return deny('policyDenied', 'policy does not allow iot:Publish');
    // A retained message also needs iot:RetainPublish on its topic (retained-message-policy-examples).
    if (packet.retain && !basicIngest && session && !this.allowed(client, session, 'iot:RetainPublish', 'topic', packet.topic)) return deny('retainDenied', 'policy does not allow iot:RetainPublish');
    // Basic Ingest goes to the rules engine only: never retained, never delivered (see authorizeForward).
    if (basicIngest) packet.retain = false;
    const accept = () => {
      count(this.stats.publishesAccepted, basicIngest ? `basicIngestQos${packet.qos}` : `qos${packet.qos}`);
      this.rate.mark();
      cb(null);
    };
    if (!this.opts.ingress) return accept();
    this.opts.ingress
      .append({ topic: packet.topic, clientId: client.id, principal: session?.certificateId ?? '', qos: packet.qos, payload, ...(properties && { properties }) })
      .then(accept)
      .catch((e: Error & { code?: string }) => {
        // No PUBACK: the client publishes again. A full disk gets its own reason, as the one thing to fix.
        count(this.stats.publishesDenied, e.code === 'SQLITE_FULL' ? 'diskFull' : 'ingressUnavailable');
        this.log(`ingress log write failed: ${e.message}`);
        // An MQTT 5 client would take a PUBACK 0x87 as final: it is disconnected (0x89, Server busy) instead, so it
        // publishes again, as a 3.1.1 client does.
        if (v5 && !client.closed) return client.disconnect({ reasonCode: REASON.serverBusy }, () => cb(e));
        cb(e);
      });
  }

  private authorizeSubscribe(client: Client, sub: Subscription, cb: (error: Error | null, subscription?: Subscription | null) => void): void {
    const session = this.sessions.get(client);
    const share = (sub as SharedSubscription).share;
    // The filter as the client wrote it: a shared subscription's policy resource is topicfilter/$share/<group>/<filter>.
    const filter = share?.name ?? sub.topic;
    // AWS: "Your devices and rules can't subscribe to Basic Ingest reserved topics."
    const deny = (reason: string, message: string) => {
      count(this.stats.subscriptionsDenied, reason);
      this.throttled.log(reason, `subscribe denied for ${client.id} on ${clip(filter)}: ${message}`);
      return cb(null, null); // SUBACK 0x80 for this filter (MQTT 5: 0x87)
    };
    if (isBasicIngest(sub.topic)) return deny('reservedTopic', 'Basic Ingest topics cannot be subscribed to');
    // AWS IoT Core sends no SUBACK for QoS 2: the connection is closed so the client does not wait forever.
    if (sub.qos === 2) {
      count(this.stats.subscriptionsDenied, 'qos2NotSupported');
      this.throttled.log('qos2NotSupported', `subscribe denied for ${client.id} on ${clip(sub.topic)}: AWS IoT Core does not support QoS 2; connection closed`);
      return cb(counted('AWS IoT Core does not support QoS 2'));
    }
    const size = sizeProblem(sub.topic);
    if (size) return deny(size.reason, size.message);
    if (session && !this.allowed(client, session, 'iot:Subscribe', 'topicfilter', filter)) return deny('policyDenied', 'policy does not allow iot:Subscribe');
    if (share && session) this.joinShare(client, session, share.key, sub.topic);
    cb(null, sub);
  }

  private joinShare(client: Client, session: Session, key: string, filter: string): void {
    let group = this.shareGroups.get(key);
    if (!group) this.shareGroups.set(key, (group = { key, filter, matches: compileTopicMatcher(filter), members: [], next: 0 }));
    if (!group.members.includes(client)) group.members.push(client);
    if (!session.shares) {
      session.shares = [];
      client.conn.once('close', () => {
        for (const g of [...(session.shares ?? [])]) this.leaveShare(client, g.key);
      });
    }
    if (!session.shares.includes(group)) session.shares.push(group);
  }

  private leaveShare(client: Client, key: string): void {
    const group = this.shareGroups.get(key);
    if (!group) return;
    group.members = group.members.filter((m) => m !== client);
    if (!group.members.length) this.shareGroups.delete(key);
    const session = this.sessions.get(client);
    if (session?.shares) session.shares = session.shares.filter((g) => g !== group);
  }

  /**
   * Whether `client` is the one to receive `packet` for its shared subscriptions: each message goes to one member
   * of a group, in turn among those allowed to receive it. aedes asks once per subscriber of a message, one after
   * the other, so the member chosen at the first ask stands for the rest (keyed by the message's broker counter).
   */
  private sharedTurn(shares: ShareGroup[], client: Client, packet: AedesPublishPacket): boolean {
    for (const group of shares) {
      if (!group.matches(packet.topic)) continue;
      const message = `${packet.brokerId}:${packet.brokerCounter}`;
      if (group.lastMessage !== message) {
        group.lastMessage = message;
        group.chosen = this.nextMember(group, packet.topic);
      }
      return group.chosen === client;
    }
    return true;
  }

  private nextMember(group: ShareGroup, topic: string): Client | undefined {
    const n = group.members.length;
    for (let i = 0; i < n; i++) {
      const member = group.members[(group.next + i) % n]!;
      const session = this.sessions.get(member);
      if (member.closed || !session || !this.allowed(member, session, 'iot:Receive', 'topic', topic)) continue;
      group.next = (group.next + i + 1) % n;
      return member;
    }
    return undefined;
  }

  /**
   * One device provisioning MQTT API request: its answer goes to `<topic>/accepted` or `<topic>/rejected`, on this
   * connection only ("through the same MQTT connection used to publish the API request"), and only when the
   * client subscribed to it first, as AWS documents it.
   */
  private provision(client: Client, session: Session, request: ProvisioningRequest, payload: Buffer, topic: string): void {
    this.opts
      .provisioning!.handle(request, payload, { certificateId: session.certificateId, clientId: client.id })
      .then(
        (body) => ({ outcome: 'accepted', body }),
        (e: Error) => {
          if (!(e instanceof ProvisioningError)) this.log(`provisioning ${request.api} failed for ${client.id}: ${e.message}`);
          const error = e instanceof ProvisioningError ? e : new ProvisioningError(500, 'InternalFailure', 'An internal error occurred');
          return { outcome: 'rejected', body: error.payload() as Record<string, unknown> };
        },
      )
      .then(({ outcome, body }) => {
        // Refusals are peer-driven: a flood of them is summed up, as other refusals are.
        if (outcome === 'accepted') this.log(`provisioning ${request.api} for ${client.id}: accepted`);
        else this.throttled.log('provisioningRejected', `provisioning ${request.api} for ${client.id}: rejected (${String(body.errorCode)})`);
        this.respond(client, session, `${topic}/${outcome}`, request.format === 'cbor' ? encodeCbor(body) : Buffer.from(JSON.stringify(body)));
      })
      // Never an unhandled rejection in the daemon.
      .catch((e: Error) => this.log(`provisioning response to ${client.id} failed: ${e.message}`));
  }

  private respond(client: Client, session: Session, topic: string, payload: Buffer): void {
    if (client.closed) return;
    const subscriptions = (client as AedesClient).subscriptions as Record<string, { qos: number }>;
    const qos = Object.entries(subscriptions).filter(([filter]) => compileTopicMatcher(filter)(topic)).map(([, s]) => Math.min(s.qos, 1));
    if (!qos.length) return;
    if (!this.allowed(client, session, 'iot:Receive', 'topic', topic)) return void count(this.stats.deliveriesDenied, 'policyDenied');
    const packet = { cmd: 'publish', topic, payload, qos: Math.max(...qos), retain: false, dup: false } as PublishPacket;
    client.publish(packet, (err) => err && this.log(`provisioning response to ${client.id} failed: ${err.message}`));
  }

  private authorizeForward(client: Client, packet: AedesPublishPacket): AedesPublishPacket | null {
    if (isBasicIngest(packet.topic) || (this.opts.provisioning && provisioningRequest(packet.topic))) return null;
    const session = this.sessions.get(client);
    if (!session || packet.topic.startsWith('$SYS')) return session ? null : packet;
    if (session.shares && !this.sharedTurn(session.shares, client, packet)) return null;
    if (this.allowed(client, session, 'iot:Receive', 'topic', packet.topic)) return packet;
    count(this.stats.deliveriesDenied, 'policyDenied');
    return null;
  }

  private stillActive(session: Session): boolean {
    return this.opts.registry.principal(session.certificateId)?.certificate.status === 'ACTIVE';
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

type SharedSubscription = Subscription & { share?: { name: string; key: string } };

const DISCONNECT_PACKET_TOO_LARGE = Buffer.from([0xe0, 0x01, REASON.packetTooLarge]);

/** The session expiry an MQTT 5 CONNECT or DISCONNECT asks for, held to AWS's; returns it when it was lowered. */
function clampSessionExpiry(properties?: { sessionExpiryInterval?: number }): number | undefined {
  if (!properties?.sessionExpiryInterval || properties.sessionExpiryInterval <= MAX_SESSION_EXPIRY_S) return undefined;
  return (properties.sessionExpiryInterval = MAX_SESSION_EXPIRY_S);
}

/**
 * Sockets of MQTT 5 clients (with the session expiry granted when it was lowered). Their CONNACK says what AWS IoT
 * Core supports, which aedes 2 has no option for: Maximum QoS 1, shared subscriptions available (aedes says not),
 * no subscription identifiers. aedes writes every packet through mqtt-packet's writeToStream, so the CONNACK is
 * amended there, for these sockets only.
 */
const v5Streams = new WeakMap<object, number | undefined>();
const writeToStream = mqttPacket.writeToStream;
mqttPacket.writeToStream = Object.assign(function amendConnack(packet: mqttPacket.Packet, stream: Parameters<typeof writeToStream>[1], opts?: object) {
  if (packet.cmd === 'connack' && packet.reasonCode === 0 && v5Streams.has(stream)) {
    const properties = (packet.properties ??= {});
    delete properties.sharedSubscriptionAvailable;
    properties.maximumQoS = 1;
    properties.subscriptionIdentifiersAvailable = false;
    const granted = v5Streams.get(stream);
    if (granted !== undefined) properties.sessionExpiryInterval = granted;
  }
  return writeToStream(packet, stream, opts);
}, { cacheNumbers: writeToStream.cacheNumbers });

/** The MQTT 5 properties of a PUBLISH that rules read (get_mqtt_property, get_user_properties), if it has any. */
export function mqttProperties(packet: { properties?: mqttPacket.IPublishPacket['properties'] }): MqttProperties | undefined {
  const p = packet.properties;
  if (!p) return undefined;
  const out: MqttProperties = {};
  if (p.contentType !== undefined) out.contentType = p.contentType;
  if (p.payloadFormatIndicator !== undefined) out.payloadFormatIndicator = p.payloadFormatIndicator ? 1 : 0;
  if (p.responseTopic !== undefined) out.responseTopic = p.responseTopic;
  if (p.correlationData !== undefined) out.correlationData = p.correlationData;
  if (p.userProperties !== undefined) out.userProperties = p.userProperties;
  return Object.keys(out).length ? out : undefined;
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

/** A peer-chosen string shortened for the log (topics of 42 KB were logged whole). */
function clip(s: string, max = 200): string {
  return s.length <= max ? s : `${s.slice(0, max)}... (${Buffer.byteLength(s)} bytes)`;
}

const PACKET_NAMES: Record<number, string> = { 1: 'CONNECT', 3: 'PUBLISH', 8: 'SUBSCRIBE', 10: 'UNSUBSCRIBE' };

/**
 * Watches the MQTT fixed headers going from `socket` to aedes (which reads with `socket.read()`) and calls
 * `refuse(type, declared)` instead of returning the bytes when a packet declares a remaining length over `max`
 * (or a malformed one), so its body is never buffered. Bodies are skipped by count: O(1) per packet.
 */
export function guardPacketSize<S extends Socket>(socket: S, max: number, refuse: (type: number, declared: number) => void): S {
  let state: 'header' | 'length' | 'body' = 'header';
  let type = 0;
  let length = 0;
  let multiplier = 1;
  let lengthBytes = 0;
  let remaining = 0;
  let refused = false;
  const scan = (buf: Buffer): boolean => {
    for (let i = 0; i < buf.length; ) {
      if (state === 'body') {
        const skip = Math.min(remaining, buf.length - i);
        i += skip;
        remaining -= skip;
        if (remaining === 0) state = 'header';
        continue;
      }
      const byte = buf[i++]!;
      if (state === 'header') {
        type = byte >> 4;
        length = 0;
        multiplier = 1;
        lengthBytes = 0;
        state = 'length';
        continue;
      }
      length += (byte & 0x7f) * multiplier;
      multiplier *= 128;
      lengthBytes++;
      if (length > max) return false;
      if (byte & 0x80) {
        if (lengthBytes === 4) return false; // a fifth length byte: malformed
        continue;
      }
      remaining = length;
      state = remaining > 0 ? 'body' : 'header';
    }
    return true;
  };
  const read = socket.read;
  socket.read = function guardedRead(this: S, size?: number) {
    const chunk = read.call(this, size) as Buffer | null;
    if (refused) return null;
    if (chunk && Buffer.isBuffer(chunk) && !scan(chunk)) {
      refused = true;
      refuse(type, length);
      return null;
    }
    return chunk;
  } as S['read'];
  return socket;
}

function cap(s: string): string {
  return s.charAt(0) + s.slice(1).toLowerCase();
}

function tlsReason(err: Error & { code?: string }): string {
  const m = `${err.code ?? ''} ${err.message}`;
  if (/PEER_DID_NOT_RETURN_A_CERTIFICATE|NO_CERTIFICATE/i.test(m)) return 'noClientCertificate';
  if (/CERTIFICATE_VERIFY_FAILED|UNKNOWN_CA|unknown ca|certificate verify|self.signed|unable to get/i.test(m)) return 'untrustedCertificate';
  if (/HANDSHAKE_TIMEOUT|handshake timeout/i.test(m)) return 'handshakeTimeout';
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
