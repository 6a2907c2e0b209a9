// Runs one iotctl command from the TypeScript sources in this process, as bin/run.js would from dist/:
//   node --import tsx test/unit/stream/run-command.ts stream/tail telemetry --limit 1
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const [command, ...argv] = process.argv.slice(2);
const root = resolve(import.meta.dirname, '../../..');
const mod = (await import(pathToFileURL(resolve(root, 'src/commands', `${command}.ts`)).href)) as { default: { run(argv: string[], root: string): Promise<unknown> } };
await mod.default.run(argv, pathToFileURL(resolve(root, 'package.json')).href);
