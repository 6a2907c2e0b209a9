import { createInterface } from 'node:readline/promises';
import { CancelledError, UserError } from './errors.js';
import { isInteractive } from './output.js';

/** Ask before changing things. Non-interactive runs must say --yes. */
export async function confirm(question: string, yes: boolean): Promise<void> {
  if (yes) return;
  if (!isInteractive() || !process.stdin.isTTY) {
    throw new UserError('Refusing to apply changes without confirmation in a non-interactive shell.', 'Review the plan (--dry-run), then run again with --yes.', 'CONFIRMATION_REQUIRED');
  }
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await rl.question(`${question} [y/N] `);
    if (!/^y(es)?$/i.test(answer.trim())) throw new CancelledError('Nothing was changed.');
  } finally {
    rl.close();
  }
}
