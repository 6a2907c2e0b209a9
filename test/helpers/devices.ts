import { join } from 'node:path';
import { Context } from '../../src/context.js';
import { ensureDevicePolicy, registerDevice } from '../../src/services/devices.js';
import { readCredentials, type DeviceCredentials } from '../../src/services/publish.js';
import { openTarget } from '../../src/targets/index.js';
import type { Project } from './project.js';

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
