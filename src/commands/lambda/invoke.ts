import { Args, Flags } from '@oclif/core';
import { readFileSync } from 'node:fs';
import { readUserFile } from '../../services/files.js';
import { BaseCommand } from '../../base-command.js';
import { NotFoundError, type InvokeResult } from '../../ports.js';
import { withTarget } from '../../targets/index.js';
import { isUserError, UserError } from '../../ui/errors.js';
import { info, isTTY, printLine } from '../../ui/output.js';

export default class LambdaInvoke extends BaseCommand<typeof LambdaInvoke> {
  static override summary = 'Invoke a deployed function once with an event, and show its result and logs.';
  static override description =
    'Runs the function in a worker thread of this process, as the local platform does (timeout, memory limit, environment). ' +
    'The result goes to stdout, the log tail (START..REPORT) to stderr. Exits 1 when the function fails.';
  static override examples = ['<%= config.bin %> lambda invoke ingest --event kinesis-event.json', 'cat event.json | <%= config.bin %> lambda invoke ingest --event - --json'];
  static override args = { name: Args.string({ description: 'Function name.', required: true }) };
  static override flags = {
    event: Flags.string({ description: 'JSON file with the event ("-" reads stdin).', required: true }),
  };

  async run(): Promise<InvokeResult> {
    const event = this.readEvent();
    return withTarget(this.ctx, async (target) => {
      const fns = target.functions;
      let result: InvokeResult;
      try {
        result = await fns.invoke(this.args.name, event);
      } catch (err) {
        if (err instanceof NotFoundError) {
          const names = (await fns.list()).map((f) => f.name);
          throw new UserError(`Function "${this.args.name}" is not deployed.`, names.length ? `Deployed: ${names.join(', ')}.` : 'Deploy it with `iotctl lambda deploy <template>`.', 'FUNCTION_NOT_FOUND');
        }
        if (isUserError(err)) throw err;
        throw new UserError((err as Error).message, `iotctl lambda deploy ${(await fns.get(this.args.name))?.template ?? '<template>'} --name ${this.args.name}`);
      }
      if (!this.jsonEnabled()) {
        for (const line of result.logTail) info(line);
        if (result.functionError) info(`Function error: ${(result.payload as { errorType?: string }).errorType ?? 'Unhandled'}`);
        printLine(JSON.stringify(result.payload, null, isTTY() ? 2 : undefined));
      }
      if (result.functionError) process.exitCode = 1;
      return result;
    });
  }

  private readEvent(): unknown {
    const file = this.flags.event;
    const fix = 'Pass a JSON file with --event FILE, or --event - to read stdin.';
    let text: string;
    try {
      // Lambda's own limit for a synchronous invocation's payload is 6 MB.
      text = file === '-' ? readFileSync(0, 'utf8') : readUserFile(file, fix, 'the event file ', { maxBytes: 6 * 1024 * 1024 }).toString('utf8');
    } catch (err) {
      if (err instanceof UserError) throw err;
      throw new UserError(`Cannot read the event from stdin: ${(err as Error).message}`, fix, 'USAGE');
    }
    try {
      return JSON.parse(text);
    } catch (err) {
      throw new UserError(`The event in ${file === '-' ? 'stdin' : file} is not JSON: ${(err as Error).message}`, 'An event is one JSON value, e.g. {"Records": [...]}.', 'USAGE');
    }
  }
}
