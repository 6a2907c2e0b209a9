import { existsSync } from 'node:fs';
import { READ_LIMITS, readUserFile, stageFolder } from './files.js';
import { rememberCredentialsDir } from './credentials-index.js';
import { join, resolve } from 'node:path';
import type { Spec } from '../spec/schema.js';
import type { DeviceRegistryPort, RegisteredDevice } from '../ports.js';
import { defaultDevicePolicy } from '../iot/policy/index.js';
import { UserError } from '../ui/errors.js';
import { specValidityMs } from './certificates.js';

export interface DeviceTopics {
  /** The topic the device publishes telemetry on. */
  telemetry: string;
  /** The filter the device subscribes to for commands. */
  commands: string;
}

export function deviceTopics(spec: Spec, thingName: string): DeviceTopics {
  const fill = (t: string) => t.replaceAll('${project}', spec.project).replaceAll('${thing}', thingName);
  return { telemetry: fill(spec.devices.topics.telemetry), commands: fill(spec.devices.topics.commands) };
}

/** The device policy the spec asks for: its own document, or least privilege from the topic scheme. */
export function desiredDevicePolicy(spec: Spec) {
  const fill = (t: string) => t.replaceAll('${project}', spec.project);
  return spec.devices.policy.document ?? defaultDevicePolicy({ telemetryTopic: fill(spec.devices.topics.telemetry), commandsFilter: fill(spec.devices.topics.commands) });
}

export async function ensureDevicePolicy(devices: DeviceRegistryPort, spec: Spec): Promise<void> {
  if (!(await devices.getPolicy(spec.devices.policy.name))) await devices.putPolicy(spec.devices.policy.name, desiredDevicePolicy(spec));
}

export interface RegisterRequest {
  thingName: string;
  thingType?: string;
  attributes?: Record<string, string>;
  csrPem?: string;
  /** aws only: CreateKeysAndCertificate instead of a local key and CSR. */
  awsGeneratedKeys?: boolean;
  /** Written as ca.pem instead of the target's CA (--ca-file). */
  caPem?: string;
  /** The state dir whose credentials index records where the files went (for `publish --device`). */
  credentialsIndex?: string;
  /** Local CA: the certificate's validity (default: devices.certificateValidity, else a year). */
  validityMs?: number;
}

const THING_NAME = /^[a-zA-Z0-9:_-]{1,128}$/;

export function validateThingName(name: string): void {
  if (!THING_NAME.test(name)) {
    throw new UserError(`Invalid thing name "${name}".`, 'Thing names use letters, digits, ":", "_" and "-" (1-128 characters), as AWS IoT requires.', 'INVALID_THING_NAME');
  }
}

/**
 * Register one device and write its credentials to <outDir>/<thing>/. All or nothing: the files are written
 * to a temporary folder and moved into place; if that fails, the registration is undone.
 */
export async function registerDevice(devices: DeviceRegistryPort, spec: Spec, req: RegisterRequest, outDir: string): Promise<RegisteredDevice & { dir: string }> {
  validateThingName(req.thingName);
  // The private folder first: an --out that cannot be written to registers nothing.
  const staged = stageFolder(resolve(outDir, req.thingName), { flag: '--out' });
  let device: RegisteredDevice;
  try {
    device = await devices.register({
      thingName: req.thingName,
      thingType: req.thingType ?? spec.devices.thingType,
      attributes: { ...spec.devices.attributes, ...req.attributes },
      policyName: spec.devices.policy.name,
      csrPem: req.csrPem,
      ...(req.awsGeneratedKeys ? { awsGeneratedKeys: true } : {}),
      // The aws target ignores it: AWS signs with its own validity.
      validityMs: req.validityMs ?? specValidityMs(spec),
    });
  } catch (e) {
    staged.discard();
    throw e;
  }
  const dir = staged.dest;
  try {
    staged.write({ name: 'cert.pem', data: device.certPem });
    if (device.keyPem) staged.write({ name: 'private.key', data: device.keyPem, mode: 0o600 });
    staged.write({ name: 'ca.pem', data: req.caPem ?? device.caPem });
    staged.write({ name: 'endpoint.json', data: JSON.stringify(device.endpoint, null, 2) + '\n' });
    staged.commit();
  } catch (e) {
    staged.discard();
    await devices.delete(req.thingName).catch(() => {});
    const why = e instanceof UserError ? e.message : (e as Error).message;
    throw new UserError(`Could not write the credentials for ${req.thingName} to ${dir}: ${why}`, 'Check that --out is writable; nothing was registered.', 'OUTPUT_UNWRITABLE');
  }
  // Recorded so that `publish --device` finds the credentials wherever --out put them.
  if (req.credentialsIndex) rememberCredentialsDir(req.credentialsIndex, req.thingName, dir);
  return { ...device, dir };
}

/** Bulk file: CSV with a header; `thingName` (required), `thingType`, and any other column becomes an attribute. */
export function parseDevicesCsv(file: string): RegisterRequest[] {
  const text = readUserFile(file, 'Check the path given to --from-file; register larger fleets in several files.', 'the devices CSV ', { maxBytes: READ_LIMITS.devicesCsv }).toString('utf8');
  const lines = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  const header = lines.shift()?.split(',').map((h) => h.trim());
  const nameCol = header?.findIndex((h) => /^(thingName|thing_name|thing|name)$/i.test(h)) ?? -1;
  if (!header || nameCol < 0) {
    throw new UserError(`${file}:1: the CSV header has no thingName column.`, 'Start the file with a header such as `thingName,thingType,site`.', 'CSV_INVALID');
  }
  const typeCol = header.findIndex((h) => /^(thingType|thing_type|type)$/i.test(h));
  const seen = new Set<string>();
  return lines.map((line, i) => {
    const cells = line.split(',').map((c) => c.trim());
    const thingName = cells[nameCol] ?? '';
    if (cells.length !== header.length) throw new UserError(`${file}:${i + 2}: expected ${header.length} columns, found ${cells.length}.`, 'Each row needs one value per header column.', 'CSV_INVALID');
    if (!THING_NAME.test(thingName)) throw new UserError(`${file}:${i + 2}: invalid thing name "${thingName}".`, 'Thing names use letters, digits, ":", "_" and "-".', 'CSV_INVALID');
    if (seen.has(thingName)) throw new UserError(`${file}:${i + 2}: "${thingName}" appears twice.`, 'Each thing name must be unique in the file.', 'CSV_INVALID');
    seen.add(thingName);
    const attributes: Record<string, string> = {};
    header.forEach((h, c) => {
      if (c !== nameCol && c !== typeCol && cells[c]) attributes[h] = cells[c]!;
    });
    return { thingName, thingType: typeCol >= 0 ? cells[typeCol] || undefined : undefined, attributes };
  });
}

export interface BulkResult {
  registered: string[];
  skipped: string[];
  failed: { thingName: string; error: string }[];
}

/** Register many devices; a re-run skips devices already done (registered, with credentials on disk). */
export async function registerMany(
  devices: DeviceRegistryPort,
  spec: Spec,
  requests: RegisterRequest[],
  outDir: string,
  onProgress: (done: number, total: number) => void = () => {},
  concurrency?: number,
): Promise<BulkResult> {
  const workers = concurrency ?? (await devices.bulkConcurrency());
  const result: BulkResult = { registered: [], skipped: [], failed: [] };
  let next = 0;
  let done = 0;
  const worker = async () => {
    while (next < requests.length) {
      const req = requests[next++]!;
      try {
        const exists = await devices.exists(req.thingName);
        if (exists && existsSync(join(outDir, req.thingName, 'cert.pem'))) result.skipped.push(req.thingName);
        else if (exists) {
          // Registered, but its credentials are not here (an interrupted run, or another --out): never re-key silently.
          result.failed.push({ thingName: req.thingName, error: `registered already, but ${join(outDir, req.thingName)} has no credentials; if they are lost, \`iotctl device delete ${req.thingName}\` and run again` });
        } else {
          await registerDevice(devices, spec, req, outDir);
          result.registered.push(req.thingName);
        }
      } catch (e) {
        result.failed.push({ thingName: req.thingName, error: (e as Error).message });
      }
      onProgress(++done, requests.length);
    }
  };
  await Promise.all(Array.from({ length: workers }, worker));
  return result;
}
