import { Args, Flags } from '@oclif/core';
import { stageDevicesDir } from '../../spec/stages.js';
import { BaseCommand } from '../../base-command.js';
import { READ_LIMITS, readUserFile } from '../../services/files.js';
import { openTarget } from '../../targets/index.js';
import { lifetimeMs, rotateDevice, rotateExpiring, specValidityMs, type BulkRotateResult, type RotateResult } from '../../services/certificates.js';
import { UserError } from '../../ui/errors.js';
import { info } from '../../ui/output.js';
import { runSteps, stepsMode } from '../../ui/tasks.js';

export default class DeviceRotate extends BaseCommand<typeof DeviceRotate> {
  static override summary = "Rotate a thing's certificate, make before break: the new one is issued and attached while the old one keeps working.";
  static override description =
    'Issues a new certificate (a local key and CSR, or --csr), attaches the device policy and the thing, writes the new credentials to <out>/<thing>/next/ beside the old ones and keeps the old certificate ACTIVE for --grace. ' +
    '`--finish` (or the next rotate after the grace) moves the new credentials into <out>/<thing>/ and deactivates, detaches and deletes the old certificate, but only once the new one has connected: ' +
    'locally the broker records it; on aws --confirm is required, unless fleet indexing records thing connectivity. With --expiring, every thing whose certificate expires within the window is rotated (paced at the API rates; a rerun resumes).';
  static override examples = [
    '<%= config.bin %> device rotate sensor-1 --grace 7d',
    '<%= config.bin %> device rotate sensor-2 --csr sensor-2-next.csr',
    '<%= config.bin %> device rotate --finish sensor-1',
    '<%= config.bin %> device rotate --finish sensor-1 --confirm --target aws',
    '<%= config.bin %> device rotate --expiring 30d',
  ];
  static override args = { thing: Args.string({ description: 'Thing name.' }) };
  static override flags = {
    grace: Flags.string({ description: 'How long the old certificate stays ACTIVE (e.g. 7d, 12h).', default: '7d', env: 'IOTCTL_ROTATE_GRACE' }),
    csr: Flags.string({ description: 'PEM certificate signing request made on the device for the new certificate (the key never leaves it).', exclusive: ['expiring'] }),
    finish: Flags.boolean({ description: 'Retire the old certificate now (once the new one has connected).', exclusive: ['expiring'] }),
    confirm: Flags.boolean({ description: 'aws: you checked that the device connects with the new certificate (AWS shows connections only through fleet indexing).' }),
    expiring: Flags.string({ description: 'Rotate every thing whose ACTIVE certificate expires within this window (e.g. 30d), and move rotations in progress on.', env: 'IOTCTL_EXPIRING' }),
    out: Flags.string({ description: 'Where the credential folders are (default: devices, and devices/@<stage> for a stage other than default).', env: 'IOTCTL_DEVICES_DIR' }),
    validity: Flags.string({ description: 'Local target: the new certificate\'s validity (default devices.certificateValidity, else 1y). Refused on aws.', env: 'IOTCTL_CERT_VALIDITY' }),
  };

  async run(): Promise<RotateResult | BulkRotateResult> {
    const { spec } = this.ctx.spec;
    const thing = this.args.thing;
    if (!thing && this.flags.expiring === undefined) throw new UserError('Missing the thing name.', 'Run `iotctl device rotate <thing>`, or `iotctl device rotate --expiring 30d` for every expiring certificate.', 'USAGE');
    if (thing && this.flags.expiring !== undefined) throw new UserError('Give a thing name or --expiring, not both.', 'Run `iotctl device rotate <thing>` for one device, `--expiring 30d` for all that expire.', 'USAGE');
    const graceMs = lifetimeMs(this.flags.grace, '--grace');
    if (this.flags.validity !== undefined && this.ctx.targetName === 'aws') {
      throw new UserError('--validity is not available on the aws target: AWS IoT signs the certificate from the CSR with its own validity.', 'Leave out --validity on aws.', 'VALIDITY_NOT_ON_AWS');
    }
    const validityMs = this.flags.validity !== undefined ? lifetimeMs(this.flags.validity, '--validity') : this.ctx.targetName === 'local' ? specValidityMs(spec) : undefined;
    const csrPem = this.flags.csr ? readUserFile(this.flags.csr, 'Give --csr the PEM certificate signing request (openssl req -new ... -out device.csr).', 'the CSR ', { maxBytes: READ_LIMITS.csr }).toString('utf8') : undefined;
    const opts = {
      graceMs,
      outDir: this.flags.out ?? stageDevicesDir(this.ctx.stage),
      stateDir: this.ctx.paths.stateDir,
      confirm: this.flags.confirm,
      ...(validityMs !== undefined ? { validityMs } : {}),
      ...(csrPem !== undefined ? { csrPem } : {}),
    };
    const target = await openTarget(this.ctx);
    try {
      if (!thing) {
        const windowMs = lifetimeMs(this.flags.expiring!, '--expiring');
        const started = Date.now();
        let result!: BulkRotateResult;
        await runSteps(
          [{ title: `Rotate certificates expiring within ${this.flags.expiring} on ${target.name}`, run: async (update) => void (result = await rotateExpiring(target.devices, spec, windowMs, opts, (done, total) => update(`${done}/${total}`))) }],
          stepsMode(this.jsonEnabled()),
        );
        info(
          `Started ${result.started.length}, finished ${result.finished.length}, in grace ${result.inGrace.length}, waiting for a connection ${result.waiting.length}, ` +
            `not expiring ${result.skipped}, failed ${result.failed.length} (${((Date.now() - started) / 1000).toFixed(1)} s).`,
        );
        for (const w of result.waiting) info(`  ${w.thingName}: ${w.detail}`);
        for (const f of result.failed) info(`  ${f.thingName}: ${f.error}`);
        if (result.failed.length) process.exitCode = 1;
        return result;
      }
      const result = await rotateDevice(target.devices, spec, thing, { ...opts, finish: this.flags.finish });
      if (!this.jsonEnabled()) {
        const id = (s: string) => `${s.slice(0, 12)}…`;
        if (result.action === 'started') {
          info(`Rotating ${thing}: new certificate ${id(result.newCertificateId)} in ${result.credentials}; the old one ${id(result.oldCertificateId)} stays ACTIVE until ${result.graceUntil}.`);
          info(`Install the new credentials on the device, then: iotctl device rotate --finish ${thing}`);
        } else if (result.action === 'finished') info(`Finished ${thing}'s rotation (${result.detail}): old certificate ${id(result.oldCertificateId)} deleted; credentials in ${result.credentials}.`);
        else if (result.action === 'in-grace') info(`${thing} is rotating already; the old certificate stays ACTIVE until ${result.graceUntil}. Finish early with \`iotctl device rotate --finish ${thing}\`.`);
        else info(`${thing}'s grace is over, but: ${result.detail}`);
      }
      return result;
    } finally {
      await target.close();
    }
  }
}
