import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../base-command.js';
import { deployFunction, planDeployment } from '../../services/functions.js';
import type { EventSourceSpec } from '../../spec/schema.js';
import { withTarget } from '../../targets/index.js';
import { info, warn } from '../../ui/output.js';
import { runSteps, stepsMode } from '../../ui/tasks.js';

export interface DeployResult {
  name: string;
  template: string;
  result: 'created' | 'updated' | 'unchanged';
  /** Where the deployed code is (local: the artifact file; null where the target does not show it). */
  artifactPath: string | null;
  sha256: string;
  bytes: number;
  timeoutSeconds: number;
  memoryMb: number;
  eventSource: EventSourceSpec | null;
  /** Whether it runs now: a running `iotctl local up` picks it up (it watches the store); always true on AWS. */
  daemonRunning: boolean;
}

export default class LambdaDeploy extends BaseCommand<typeof LambdaDeploy> {
  static override summary = 'Bundle a template and deploy it as a function, with its event source mapping from iotctl.yaml.';
  static override description =
    "The function's settings (timeout, memory, environment, eventSource) come from the functions[] entry of iotctl.yaml with that name, " +
    'or the only entry using the template. A running `iotctl local up` picks up the new code and mapping without a restart.';
  static override examples = ['<%= config.bin %> lambda deploy ingest-rds', '<%= config.bin %> lambda deploy ingest-rds --name ingest --json'];
  static override args = { template: Args.string({ description: 'Template name (see `iotctl lambda templates`).', required: true }) };
  static override flags = {
    name: Flags.string({ description: 'Function name (default: the functions[] entry using the template, else the template name).' }),
  };

  async run(): Promise<DeployResult> {
    const { spec } = this.ctx.spec;
    const plan = planDeployment(spec, this.args.template, this.flags.name);
    if (!plan.entry && !this.jsonEnabled()) warn(`iotctl.yaml declares no function "${plan.name}"; deploying it with the template's settings and no event source.`);
    return withTarget(this.ctx, async (target) => {
      let deployed!: Awaited<ReturnType<typeof deployFunction>>;
      // One step on the task list; the adapter's sub-steps (zip, role, update, wait until active) show as its detail.
      await runSteps(
        [{ title: `Deploy ${plan.templateName} as ${plan.name} (${target.name})`, run: async (update) => void (deployed = await deployFunction(target.functions, plan, update)) }],
        stepsMode(this.jsonEnabled()),
      );
      const daemonRunning = target.running();
      if (!this.jsonEnabled()) {
        const what = deployed.result === 'unchanged' ? 'is up to date' : deployed.result;
        info(`Function ${plan.name} ${what} (${deployed.bytes} bytes, sha256 ${deployed.sha256.slice(0, 12)}).`);
        if (plan.eventSource) info(`Event source: stream ${plan.eventSource.stream}, batch ${plan.eventSource.batchSize}, from ${plan.eventSource.startingPosition}.`);
        if (target.name === 'local') info(daemonRunning ? 'The running local platform picks it up within a second.' : 'Start the local platform with `iotctl local up` to run it.');
      }
      return {
        name: plan.name,
        template: plan.templateName,
        result: deployed.result,
        artifactPath: deployed.location ?? null,
        sha256: deployed.sha256,
        bytes: deployed.bytes,
        timeoutSeconds: plan.timeoutSeconds,
        memoryMb: plan.memoryMb,
        eventSource: plan.eventSource ?? null,
        daemonRunning,
      };
    });
  }
}
