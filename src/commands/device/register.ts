import { Args, Flags } from '@oclif/core';
import { stageDevicesDir } from '../../spec/stages.js';
import { BaseCommand } from '../../base-command.js';
import { READ_LIMITS, readUserFile } from '../../services/files.js';
import { parseCaBundle } from '../../services/pem.js';
import { openTarget, type Target } from '../../targets/index.js';
import { deviceTopics, ensureDevicePolicy, parseDevicesCsv, registerDevice, registerMany, type BulkResult, type RegisterRequest } from '../../services/devices.js';
import { UserError } from '../../ui/errors.js';
import { lifetimeMs } from '../../services/certificates.js';
import { info, warn } from '../../ui/output.js';
import { runSteps, stepsMode } from '../../ui/tasks.js';

export default class DeviceRegister extends BaseCommand<typeof DeviceRegister> {
  static override summary = 'Register a thing: issue its certificate, attach the device policy, write its credentials.';
  static override description =
    'Writes <out>/<thing>/cert.pem, private.key (mode 0600, never printed), ca.pem and endpoint.json. With --csr the CA signs your CSR and the private key never leaves the device. With --from-file, registers every row of a CSV (header: thingName[,thingType][,attribute columns...]); a re-run skips devices already done.';
  static override examples = [
    '<%= config.bin %> device register sensor-1',
    '<%= config.bin %> device register sensor-2 --type thermostat --attribute site=lab --attribute floor=2',
    '<%= config.bin %> device register sensor-3 --csr sensor-3.csr',
    '<%= config.bin %> device register --from-file devices.csv --out ./devices',
  ];
  static override args = { thing: Args.string({ description: 'Thing name (also the MQTT client id).' }) };
  static override flags = {
    type: Flags.string({ description: 'Thing type (default: devices.thingType in iotctl.yaml).' }),
    attribute: Flags.string({ description: 'Thing attribute key=value (repeatable).', multiple: true }),
    csr: Flags.string({ description: 'PEM certificate signing request to sign instead of generating a key.' }),
    out: Flags.string({ description: 'Where credential folders are written (default: devices, and devices/@<stage> for a stage other than default).', env: 'IOTCTL_DEVICES_DIR' }),
    'from-file': Flags.string({ description: 'CSV of devices to register in bulk.', exclusive: ['csr'] }),
    'aws-generated-keys': Flags.boolean({ description: 'aws: let AWS generate the key pair (CreateKeysAndCertificate) instead of a local key and CSR.', exclusive: ['csr'], env: 'IOTCTL_AWS_GENERATED_KEYS' }),
    validity: Flags.string({ description: "Local target: the certificate's validity (e.g. 1h, 30d, 1y; default devices.certificateValidity, else 1y). Refused on aws, where AWS signs with its own validity.", env: 'IOTCTL_CERT_VALIDITY' }),
    'ca-file': Flags.string({ description: 'PEM written as ca.pem instead of the target\'s CA (aws: the bundled Amazon Root CA 1).', env: 'IOTCTL_CA_FILE' }),
  };

  async run(): Promise<unknown> {
    const { spec } = this.ctx.spec;
    // Every input is read and checked before the target is touched: a wrong file changes nothing.
    const options = this.keyOptions();
    const bulk = this.flags['from-file'] ? parseDevicesCsv(this.flags['from-file']).map((r) => ({ ...r, ...options })) : undefined;
    const thing = this.args.thing;
    if (!bulk && !thing) throw new UserError('Missing the thing name.', 'Run `iotctl device register <thing>`, or pass --from-file devices.csv.', 'USAGE');
    const csrPem = this.flags.csr ? readUserFile(this.flags.csr, 'Give --csr the PEM certificate signing request (openssl req -new ... -out device.csr).', 'the CSR ', { maxBytes: READ_LIMITS.csr }).toString('utf8') : undefined;
    const validityMs = this.flags.validity === undefined ? undefined : lifetimeMs(this.flags.validity, '--validity');
    if (validityMs !== undefined && this.ctx.targetName === 'aws') {
      throw new UserError(
        '--validity is not available on the aws target: AWS IoT signs the certificate from the CSR with its own validity, which a request cannot set.',
        'Leave out --validity on aws (AWS-signed certificates keep their validity), or register on the local target, whose CA issues it.',
        'VALIDITY_NOT_ON_AWS',
      );
    }
    const target = await openTarget(this.ctx);
    try {
      await ensureDevicePolicy(target.devices, spec);
      if (bulk) return await this.bulk(target, spec, bulk);
      const device = await registerDevice(target.devices, spec, { thingName: thing!, thingType: this.flags.type, attributes: parseAttributes(this.flags.attribute ?? []), csrPem, ...options }, this.flags.out ?? stageDevicesDir(this.ctx.stage));
      const result = { thingName: device.thingName, certificateId: device.certificateId, fingerprint: device.fingerprint, credentials: device.dir, endpoint: device.endpoint, topics: deviceTopics(spec, thing!) };
      if (!this.jsonEnabled()) {
        info(`Registered ${thing} (certificate ${device.certificateId.slice(0, 12)}…). Credentials in ${device.dir}`);
        info(`Publish with: iotctl publish --device ${thing} --payload '{"temperature": 21.5}'`);
      }
      return result;
    } finally {
      await target.close();
    }
  }

  private keyOptions(): { awsGeneratedKeys?: boolean; caPem?: string; credentialsIndex: string; validityMs?: number } {
    return {
      credentialsIndex: this.ctx.paths.stateDir,
      ...(this.flags.validity !== undefined ? { validityMs: lifetimeMs(this.flags.validity, '--validity') } : {}),
      ...(this.flags['aws-generated-keys'] ? { awsGeneratedKeys: true } : {}),
      ...(this.flags['ca-file'] ? { caPem: this.readCaFile(this.flags['ca-file']) } : {}),
    };
  }

  /** Only PEM certificates become ca.pem: never another file's content (a key, /etc/shadow) copied beside a device's credentials. */
  private readCaFile(file: string): string {
    const fix = "Give --ca-file the PEM certificate (or bundle) of the CA that signed the broker's certificate.";
    return parseCaBundle(readUserFile(file, fix, 'the CA file ', { maxBytes: READ_LIMITS.caFile }), file, fix);
  }

  private async bulk(target: Target, spec: Parameters<typeof registerMany>[1], requests: RegisterRequest[]): Promise<BulkResult & { rates?: { api: string; tps: number; source: string }[] }> {
    // aws: the pace comes from the account's quotas; say which before the run (and in --json).
    const rates = await target.devices.apiRates?.();
    if (rates) {
      if (rates.note) warn(rates.note);
      info(`IoT API rates: ${Object.entries(rates.rates).map(([op, tps]) => `${op} ${tps}/s (${rates.sources[op]})`).join(', ')}`);
    }
    const started = Date.now();
    let result!: BulkResult;
    await runSteps(
      [
        {
          title: `Register ${requests.length} device${requests.length === 1 ? '' : 's'} on ${target.name}`,
          run: async (update) => void (result = await registerMany(target.devices, spec, requests, this.flags.out ?? stageDevicesDir(this.ctx.stage), (done, total) => update(`${done}/${total}`))),
        },
      ],
      stepsMode(this.jsonEnabled()),
    );
    const seconds = (Date.now() - started) / 1000;
    info(`Registered ${result.registered.length}, skipped ${result.skipped.length} already registered, failed ${result.failed.length} (${seconds.toFixed(1)} s).`);
    for (const f of result.failed) info(`  ${f.thingName}: ${f.error}`);
    if (result.failed.length) process.exitCode = 1;
    return rates ? { ...result, rates: Object.entries(rates.rates).map(([api, tps]) => ({ api, tps, source: rates.sources[api]! })) } : result;
  }
}

export function parseAttributes(pairs: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of pairs) {
    const i = pair.indexOf('=');
    if (i <= 0) throw new UserError(`Invalid attribute "${pair}".`, 'Write attributes as key=value, e.g. --attribute site=lab.', 'USAGE');
    out[pair.slice(0, i)] = pair.slice(i + 1);
  }
  return out;
}
