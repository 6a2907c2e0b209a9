import { Flags } from '@oclif/core';
import { BaseCommand } from '../../base-command.js';
import { redactUrl } from '../../db/connection.js';
import { assertNotRunning, createPlatform, startDetached } from '../../targets/local/lifecycle.js';
import { info, isInteractive } from '../../ui/output.js';

export default class LocalUp extends BaseCommand<typeof LocalUp> {
  static override summary = 'Start the embedded local platform (MQTT/TLS broker, rules, stream, functions, Postgres, lake).';
  static override description = 'In the foreground it shows a live view on a TTY and logs on stderr; Ctrl-C stops it cleanly. --detach runs it in the background (stop it with `iotctl local down`).';
  static override examples = ['<%= config.bin %> local up', '<%= config.bin %> local up --detach', '<%= config.bin %> local up --mqtt-port 18883 --detach'];
  static override flags = {
    detach: Flags.boolean({ description: 'Run in the background and return when ready.' }),
    'mqtt-port': Flags.integer({ description: 'MQTT/TLS port (default: local.mqttPort in iotctl.yaml, 8883).', min: 0, max: 65535, env: 'IOTCTL_MQTT_PORT' }),
  };

  async run(): Promise<unknown> {
    const { spec } = this.ctx.spec;
    const stateDir = this.ctx.paths.stateDir;
    assertNotRunning(stateDir);
    if (this.flags.detach) {
      const daemon = await startDetached(this.argv, stateDir);
      if (!this.jsonEnabled()) info(`Local platform running in the background (pid ${daemon.pid}): mqtts://${daemon.mqtt.host}:${daemon.mqtt.port}${daemon.databaseUrl ? `, ${redactUrl(daemon.databaseUrl)}` : ''}`);
      return daemon;
    }
    const live = isInteractive() && !process.env.IOTCTL_DAEMON;
    const view = live ? await import('../../ui/live-view.js') : undefined;
    // A detached daemon's stderr already goes to daemon.log, which the platform writes itself.
    const logLine = view ? view.pushLog : process.env.IOTCTL_DAEMON ? () => {} : (line: string) => process.stderr.write(line + '\n');
    const platform = await createPlatform({ stateDir, spec, mqttPort: this.flags['mqtt-port'], log: logLine, publishInfo: true });
    // Signals are handled from the start: Ctrl-C while PostgreSQL starts still stops everything cleanly.
    let signalled: string | undefined;
    let onSignal: (signal: string) => void = (signal) => (signalled = signal);
    process.once('SIGINT', () => onSignal('SIGINT'));
    process.once('SIGTERM', () => onSignal('SIGTERM'));
    await platform.start();
    const unmount = view?.mount(() => platform.status());
    await new Promise<void>((resolve) => {
      onSignal = async (signal) => {
        platform.log(`${signal}: stopping`);
        await platform.stop();
        unmount?.();
        resolve();
      };
      if (signalled) onSignal(signalled);
    });
    return { stopped: true };
  }
}
