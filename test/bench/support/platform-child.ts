// Runs a LocalPlatform in its own process for benchmarks, so the broker and the load generator do not
// share a core. argv: <stateDir> <rules: on|off>. Prints {"port", "plainTcpPort"} once ready.
// The compiled code (npm run bench builds it first), as users run it: tsx's transforms cost time on hot paths.
import { parseSpec } from '../../../dist/spec/loader.js';
import { LocalPlatform } from '../../../dist/targets/local/platform.js';

const [stateDir, rules] = process.argv.slice(2);
const spec = parseSpec('project: bench\nlocal: { mqttPort: 0 }\n').spec;
const platform = new LocalPlatform({ stateDir: stateDir!, spec, mqttPort: 0, plainTcpPort: 0, rules: rules !== 'off' });
await platform.start();
process.stdout.write(JSON.stringify({ port: platform.mqttPort, plainTcpPort: platform.plainTcpPort }) + '\n');
process.on('SIGTERM', async () => {
  process.stderr.write(JSON.stringify(platform.status().ingress) + '\n');
  await platform.stop();
  process.exit(0);
});
