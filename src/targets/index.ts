import type { Context } from '../context.js';
import type { DeviceRegistryPort, Endpoint, RulesPort } from '../ports.js';
import { UserError } from '../ui/errors.js';
import { readDaemonInfo } from './local/daemon-info.js';
import { LocalDevices } from './local/devices.js';
import { RulesStore } from './local/rules-store.js';
import { openStore, type Db } from './local/store.js';

export interface Target {
  name: 'local' | 'aws';
  devices: DeviceRegistryPort;
  rules: RulesPort;
  close(): void;
}

/** The adapters for the spec's target. Commands only see the ports. */
export function openTarget(ctx: Context): Target {
  const { spec } = ctx.spec;
  if (spec.target === 'aws') {
    throw new UserError('The aws target is not available in this version of iotctl yet.', 'Set `target: local` in iotctl.yaml to use the embedded platform.', 'TARGET_UNAVAILABLE');
  }
  const db = openStore(ctx.paths.stateDir);
  const endpoint = (): Endpoint => readDaemonInfo(ctx.paths.stateDir)?.mqtt ?? { host: spec.local.host, port: spec.local.mqttPort };
  return { name: 'local', devices: new LocalDevices(db, ctx.paths.stateDir, endpoint), rules: localRules(db), close: () => db.close() };
}

function localRules(db: Db): RulesPort {
  const store = new RulesStore(db);
  return {
    list: async () => store.list(),
    get: async (name) => store.get(name),
    put: async (rule) => store.put(rule),
    delete: async (name) => store.delete(name),
  };
}
