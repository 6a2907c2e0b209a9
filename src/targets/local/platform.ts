import { ensureStateDir } from './state-dir.js';
import { join } from 'node:path';
import type { Spec } from '../../spec/schema.js';
import { Broker, type BrokerStats } from './broker.js';
import { escapeControl, RotatingLog } from './daemon-log.js';
import { IngressLog } from './ingress.js';
import { LocalObjects } from './objects.js';
import { ensurePki } from './pki.js';
import { Registry } from './registry.js';
import { FleetProvisioning } from './provisioning.js';
import { RulesRuntime, type RulesRuntimeDeps } from './rules-runtime.js';
import { RulesStore } from './rules-store.js';
import { openStore, watchDataVersion, type Db } from './store.js';
import { UserError } from '../../ui/errors.js';
import { removeDaemonInfo, writeDaemonInfo, writeJsonAtomic, type DaemonInfo, type DaemonLock } from './daemon-info.js';

export interface PlatformOptions {
  stateDir: string;
  spec: Spec;
  mqttPort?: number;
  /** false: the broker accepts publishes without the ingress log and rules (benchmark baseline). */
  rules?: boolean;
  plainTcpPort?: number;
  log?: (line: string) => void;
  /** Publish daemon.json/status.json (the `local up` process does; in-process test platforms may too). */
  publishInfo?: boolean;
  /** The daemon lock (`local up`): released when the platform has stopped, or failed to start. */
  lock?: DaemonLock;
}

/** A background part of the platform (stream mapping runner, pipelines, retention, ...). */
export interface PlatformComponent {
  name: string;
  start(): Promise<void> | void;
  stop(): Promise<void> | void;
  /** Called when another process committed to the state store (apply, deploy, revoke...). */
  onStoreChange?(): void;
  status?(): unknown;
}

export interface PlatformStatus {
  pid: number;
  startedAt: string;
  uptimeSeconds: number;
  endpoints: { mqtt: string; postgres?: string };
  connectedClients: number;
  connectionsAccepted: BrokerStats['connectionsAccepted'];
  connectionsRefused: BrokerStats['connectionsRefused'];
  publishesAccepted: BrokerStats['publishesAccepted'];
  publishesDenied: BrokerStats['publishesDenied'];
  subscriptionsDenied: BrokerStats['subscriptionsDenied'];
  deliveriesDenied: BrokerStats['deliveriesDenied'];
  publishesPerSecond: number;
  ingress: { appended: number; commits: number; lastSeq: number };
  rules?: { checkpoint: number; lag: number; messagesIn: number; rulesMatched: number; evaluationErrors: number; actionsSucceeded: unknown; actionsFailed: unknown; messagesPerSecond: number };
  components: Record<string, unknown>;
}

/** Consumed ingress entries are kept a day (for inspection and replays), rule errors a week. */
const INGRESS_RETENTION_MS = 24 * 3_600_000;
const RULE_ERRORS_RETENTION_MS = 7 * 24 * 3_600_000;
const MAINTENANCE_INTERVAL_MS = 10 * 60_000;

/** The embedded platform: broker, ingress log, rules runtime and the components plugged in after them. */
export class LocalPlatform {
  readonly db: Db;
  readonly registry: Registry;
  readonly rulesStore: RulesStore;
  ingress?: IngressLog;
  broker!: Broker;
  rules?: RulesRuntime;
  readonly objects: LocalObjects;
  readonly components: PlatformComponent[] = [];
  /** Where rule actions go; set by the components before start (stream, channels, functions). */
  readonly sinks: Partial<Pick<RulesRuntimeDeps, 'streams' | 'channels' | 'functions'>> = {};
  private stopWatching?: () => void;
  private statusTimer?: NodeJS.Timeout;
  private maintenanceTimer?: NodeJS.Timeout;
  private startedAt = new Date();
  mqttPort = 0;
  plainTcpPort?: number;
  /** For display only: never a password (daemon.json and status.json are written from it). */
  databaseUrl?: string;
  databaseSource?: string;
  readonly log: (line: string) => void;

  constructor(readonly opts: PlatformOptions) {
    ensureStateDir(opts.stateDir);
    const logFile = new RotatingLog(join(opts.stateDir, 'daemon.log'));
    const sink = opts.log ?? (() => {});
    this.log = (line) => {
      const stamped = `${new Date().toISOString()} ${escapeControl(line)}`;
      sink(stamped);
      logFile.append(stamped);
    };
    this.db = openStore(opts.stateDir);
    this.registry = new Registry(this.db);
    this.rulesStore = new RulesStore(this.db);
    this.objects = new LocalObjects(join(opts.stateDir, 'lake', 's3'));
  }

  async start(): Promise<void> {
    const { spec, stateDir } = this.opts;
    const pki = await ensurePki(stateDir);
    // The broker binds its port first, so a port in use fails in a moment; publishes accepted before
    // the rules runtime starts wait in the durable ingress log. Then the components start: the lake
    // recovers and PostgreSQL is migrated before the rules runtime delivers anything.
    const started: PlatformComponent[] = [];
    try {
      if (this.opts.rules !== false) this.ingress = new IngressLog(stateDir);
      this.broker = new Broker({
        host: spec.local.host,
        port: this.opts.mqttPort ?? spec.local.mqttPort,
        tls: { key: pki.server.keyPem, cert: pki.server.certPem, ca: pki.ca.certPem },
        registry: this.registry,
        ingress: this.ingress,
        plainTcpPort: this.opts.plainTcpPort,
        maxConnections: spec.local.maxConnections,
        handshakeTimeoutMs: spec.local.handshakeTimeoutMs,
        log: this.log,
        provisioning: this.fleetProvisioning(pki.ca),
      });
      const ports = await this.broker.start().catch((e: NodeJS.ErrnoException) => {
        const port = this.opts.mqttPort ?? spec.local.mqttPort;
        if (e.code === 'EADDRINUSE') throw new UserError(`Port ${port} on ${spec.local.host} is already in use.`, 'Stop whatever uses it (another stage of this project?), or pick another port with `--mqtt-port N` (or local.mqttPort in iotctl.yaml; a stage keeps its own under stages.<stage>.local).', 'PORT_IN_USE');
        if (e.code === 'EACCES') throw new UserError(`Not allowed to listen on port ${port}.`, 'Use a port above 1023 with --mqtt-port.', 'PORT_DENIED');
        throw e;
      });
      this.mqttPort = ports.port;
      this.plainTcpPort = ports.plainTcpPort;
      for (const c of this.components) {
        // Pushed first: a component that fails half-way (PostgreSQL up, migration failed) is stopped too.
        started.push(c);
        await c.start();
      }
    } catch (e) {
      // Nothing half-started is left running (an embedded PostgreSQL in particular), and no timer keeps
      // the process alive.
      await this.broker?.stop().catch(() => {});
      for (const c of started.reverse()) await Promise.resolve(c.stop()).catch(() => {});
      this.ingress?.close();
      this.db.close();
      this.opts.lock?.release();
      throw e;
    }
    if (this.ingress) {
      this.rules = new RulesRuntime({
        db: this.db,
        ingress: this.ingress,
        store: this.rulesStore,
        objects: this.objects,
        deliver: (topic, payload, qos) => this.broker.publish(topic, payload, qos),
        log: this.log,
        ...this.sinks,
      });
      this.rules.start();
    }
    this.stopWatching = watchDataVersion(this.db, () => this.onStoreChange());
    this.maintenanceTimer = setInterval(() => this.maintenance(), MAINTENANCE_INTERVAL_MS);
    this.maintenanceTimer.unref();
    this.log(`local platform up: mqtts://${spec.local.host}:${this.mqttPort}`);
    if (this.opts.publishInfo) this.publishInfo();
  }

  /** The provisioning MQTT API: certificates from the local CA (loaded on first use), hooks run by the function runner. */
  private fleetProvisioning(caMaterial: { certPem: string; keyPem: string }): FleetProvisioning {
    let ca: Promise<import('./ca.js').LocalCa> | undefined;
    const loadCa = () => (ca ??= import('./ca.js').then((m) => m.LocalCa.load(caMaterial)));
    return new FleetProvisioning(this.registry, loadCa, async (fn, event) => {
      const runner = this.sinks.functions as { invoke?: (name: string, event: unknown) => Promise<{ functionError?: string; payload: unknown }> } | undefined;
      if (!runner?.invoke) throw new Error('the function runner is not part of this platform');
      const result = await runner.invoke(fn, event);
      if (result.functionError) throw new Error(String((result.payload as { errorMessage?: string })?.errorMessage ?? 'function error'));
      return result.payload;
    });
  }

  /** Bounded storage: consumed ingress entries and old rule errors are deleted after their retention. */
  maintenance(now = Date.now()): void {
    try {
      const dropped = this.rules && this.ingress ? this.ingress.truncate(this.rules.checkpoint, now - INGRESS_RETENTION_MS) : 0;
      const errors = this.rulesStore.pruneErrors(now - RULE_ERRORS_RETENTION_MS);
      if (dropped || errors) this.log(`maintenance: removed ${dropped} consumed ingress entries, ${errors} rule errors`);
    } catch (e) {
      this.log(`maintenance failed: ${(e as Error).message}`);
    }
  }

  private onStoreChange(): void {
    this.broker.refresh();
    this.rules?.reload();
    for (const c of this.components) {
      try {
        c.onStoreChange?.();
      } catch (e) {
        this.log(`${c.name}: ${(e as Error).message}`);
      }
    }
  }

  private publishInfo(): void {
    const { stateDir, spec } = this.opts;
    const statusFile = join(stateDir, 'status.json');
    const info: DaemonInfo = { pid: process.pid, startedAt: this.startedAt.toISOString(), mqtt: { host: spec.local.host, port: this.mqttPort }, databaseUrl: this.databaseUrl, databaseSource: this.databaseSource, statusFile, logFile: join(stateDir, 'daemon.log') };
    const write = () => {
      try {
        writeJsonAtomic(statusFile, this.status());
      } catch (e) {
        this.log(`status write failed: ${(e as Error).message}`);
      }
    };
    write();
    writeDaemonInfo(stateDir, info);
    this.statusTimer = setInterval(write, 1000);
    this.statusTimer.unref();
  }

  status(): PlatformStatus {
    const b = this.broker.snapshot();
    const lastSeq = this.ingress?.lastSeq() ?? 0;
    const components: Record<string, unknown> = {};
    for (const c of this.components) if (c.status) components[c.name] = c.status();
    return {
      pid: process.pid,
      startedAt: this.startedAt.toISOString(),
      uptimeSeconds: Math.round((Date.now() - this.startedAt.getTime()) / 1000),
      endpoints: { mqtt: `mqtts://${this.opts.spec.local.host}:${this.mqttPort}`, postgres: this.databaseUrl },
      connectedClients: b.connectedClients,
      connectionsAccepted: b.connectionsAccepted,
      connectionsRefused: b.connectionsRefused,
      publishesAccepted: b.publishesAccepted,
      publishesDenied: b.publishesDenied,
      subscriptionsDenied: b.subscriptionsDenied,
      deliveriesDenied: b.deliveriesDenied,
      publishesPerSecond: b.publishesPerSecond,
      ingress: { appended: this.ingress?.appended ?? 0, commits: this.ingress?.commits ?? 0, lastSeq },
      rules: this.rules && { checkpoint: this.rules.checkpoint, lag: lastSeq - this.rules.checkpoint, ...this.rules.stats, messagesPerSecond: this.rules.rate.perSecond() },
      components,
    };
  }

  async stop(): Promise<void> {
    this.stopWatching?.();
    clearInterval(this.statusTimer);
    clearInterval(this.maintenanceTimer);
    await this.broker?.stop();
    await this.rules?.stop();
    const stopped = ['broker', ...(this.rules ? ['rules'] : [])];
    // In reverse start order: the consumers first, PostgreSQL last.
    for (const c of [...this.components].reverse()) {
      try {
        await c.stop();
        stopped.push(c.name);
      } catch (e) {
        this.log(`${c.name} stop failed: ${(e as Error).message}`);
      }
    }
    this.ingress?.close();
    if (this.opts.publishInfo) removeDaemonInfo(this.opts.stateDir, process.pid);
    this.db.close();
    this.log(`local platform stopped (${stopped.join(', ')})`);
    this.opts.lock?.release();
  }
}
