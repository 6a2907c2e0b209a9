import { BaseCommand, Flags } from '../../base-command.js';
import { redactUrl } from '../../db/connection.js';
import { assertNotRunning, createPlatform, saveMqttPort, startDetached } from '../../targets/local/lifecycle.js';
import { info, isInteractive, warn } from '../../ui/output.js';
import { DEFAULT_STAGE } from '../../spec/stages.js';

export default class LocalUp extends BaseCommand<typeof LocalUp> {
  static override summary = 'Start the embedded local platform (MQTT/TLS broker, rules, stream, functions, Postgres, lake).';
  static override description = 'In the foreground it shows a live view on a TTY and logs on stderr; Ctrl-C stops it cleanly. --detach runs it in the background (stop it with `iotctl local down`).';
  static override examples = ['<%= config.bin %> local up', '<%= config.bin %> local up --detach', '<%= config.bin %> local up --mqtt-port 18883 --detach'];
  static override flags = {
    detach: Flags.boolean({ description: 'Run in the background and return when ready.' }),
    'mqtt-port': Flags.integer({ description: 'MQTT/TLS port (default: local.mqttPort in iotctl.yaml, 8883). A port given here is saved as local.mqttPort (stages.<stage>.local.mqttPort for a stage), so device endpoints stay valid.', min: 0, max: 65535, env: 'IOTCTL_MQTT_PORT' }),
  };

  async run(): Promise<unknown> {
    const { spec, declaredStages } = this.ctx.spec;
    const stateDir = this.ctx.paths.stateDir;
    const stage = this.ctx.stage;
    assertNotRunning(stateDir);
    // Allowed locally (a throwaway stage), but said once: a typo would otherwise start an empty platform quietly.
    if (stage !== DEFAULT_STAGE && !declaredStages.includes(stage) && !process.env.IOTCTL_DAEMON) {
      warn(`stage '${stage}' is not declared under stages: in iotctl.yaml; it runs the base spec with its own state in ${stateDir}.`);
    }
    if (this.flags.detach) {
      const daemon = await startDetached(this.argv, stateDir);
      if (!this.jsonEnabled()) {
        info(`Local platform${stage === DEFAULT_STAGE ? '' : ` (stage ${stage})`} running in the background (pid ${daemon.pid}): mqtts://${daemon.mqtt.host}:${daemon.mqtt.port}${daemon.databaseUrl ? `, ${redactUrl(daemon.databaseUrl)}` : ''}`);
        if (this.keepsPort()) info(`Saved ${this.portKey()}: ${daemon.mqtt.port} in ${this.ctx.paths.specFile}, so device endpoints stay valid after restarts.`);
      }
      return daemon;
    }
    const live = isInteractive() && !process.env.IOTCTL_DAEMON;
    const view = live ? await import('../../ui/live-view.js') : undefined;
    // A detached daemon's stderr already goes to daemon.log, which the platform writes itself.
    const toStderr = (line: string) => void process.stderr.write(line + '\n');
    let sink: (line: string) => void = view ? view.pushLog : process.env.IOTCTL_DAEMON ? () => {} : toStderr;
    const logLine = (line: string) => sink(line);
    // Signals are handled from the start: Ctrl-C while PostgreSQL starts still stops everything cleanly.
    // SIGHUP (the terminal closed) stops cleanly too; a repeated Ctrl-C while stopping does not cut the
    // stop short (node's default would exit at once and leave PostgreSQL without its owner).
    let signalled: string | undefined;
    let onSignal: (signal: string) => void = (signal) => (signalled ??= signal);
    const handlers = (['SIGINT', 'SIGTERM', 'SIGHUP'] as const).map((signal) => {
      const handler = () => onSignal(signal);
      process.on(signal, handler);
      return () => process.off(signal, handler);
    });
    // A closed terminal makes writes fail with EIO: never let that crash the stop.
    for (const stream of [process.stdout, process.stderr]) stream.on('error', () => {});
    const platform = await createPlatform({ stateDir, spec, mqttPort: this.flags['mqtt-port'], log: logLine, publishInfo: true });
    try {
      await platform.start();
    } catch (e) {
      handlers.forEach((off) => off());
      throw e;
    }
    // The detached child saves the port; its parent only reports it.
    if (this.keepsPort() && saveMqttPort(this.ctx.paths.specFile, platform.mqttPort, this.ctx.stage)) platform.log(`saved ${this.portKey()}: ${platform.mqttPort} in ${this.ctx.paths.specFile}`);
    const unmount = view?.mount(() => platform.status());
    await new Promise<void>((resolve) => {
      let stopping = false;
      onSignal = (signal) => {
        if (stopping) {
          platform.log(`${signal}: already stopping (PostgreSQL stops last)`);
          return;
        }
        stopping = true;
        if (unmount) {
          // The view closes first, so each step of the stop shows as a plain line below it.
          unmount();
          sink = toStderr;
        }
        platform.log(`${signal}: stopping`);
        platform.stop().then(resolve, (e: Error) => {
          platform.log(`stop failed: ${e.message}`);
          resolve();
        });
      };
      if (signalled) onSignal(signalled);
    });
    handlers.forEach((off) => off());
    return { stopped: true };
  }

  /** Where saveMqttPort keeps this stage's port. */
  private portKey(): string {
    return this.ctx.stage === DEFAULT_STAGE ? 'local.mqttPort' : `stages.${this.ctx.stage}.local.mqttPort`;
  }

  /** A port given with --mqtt-port (not 0, not already the spec's) is kept for the project. */
  private keepsPort(): boolean {
    const port = this.flags['mqtt-port'];
    return port !== undefined && port > 0 && port !== this.ctx.spec.spec.local.mqttPort;
  }
}
