import { join } from 'node:path';
import { Context } from '../../src/context.js';
import { ensureDevicePolicy, registerDevice } from '../../src/services/devices.js';
import { readCredentials, type DeviceCredentials } from '../../src/services/publish.js';
import { openTarget } from '../../src/targets/index.js';
import type { Project } from './project.js';
import type { AwsClients } from '../../src/targets/aws/sdk.js';
import { AwsDevices } from '../../src/targets/aws/devices.js';
import { stageNames } from '../../src/targets/aws/naming.js';
import { ownerOf } from '../../src/targets/aws/ownership.js';
import type { Spec } from '../../src/spec/schema.js';

/** The aws device registry of a spec's project in one stage, as openAwsTarget builds it. */
export function awsDevicesOf(aws: AwsClients, spec: Spec, stage = 'default', tps?: Record<string, number>): AwsDevices {
  return new AwsDevices(aws, { owner: ownerOf(spec.project, stage), names: stageNames({ project: spec.project, stage }), policyName: spec.devices.policy.name, ...(tps ? { tps } : {}) });
}

/** Registers a thing on the project's target as `device register` does, with its credentials in <project>/devices. */
export async function registerTestDevice(project: Project, thing: string): Promise<DeviceCredentials> {
  const ctx = new Context({ specFile: project.specFile, projectDir: project.dir, stateDir: project.stateDir });
  const target = await openTarget(ctx);
  try {
    await ensureDevicePolicy(target.devices, project.spec);
    await registerDevice(target.devices, project.spec, { thingName: thing }, join(project.dir, 'devices'));
  } finally {
    await target.close();
  }
  return readCredentials(join(project.dir, 'devices'), thing);
}
