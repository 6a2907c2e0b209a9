import type { Hook } from '@oclif/core';

/** An unknown command is a user error (exit 1), with the nearest command ids as the fix. */
const hook: Hook.CommandNotFound = async function (opts) {
  const wanted = opts.id.replace(/:/g, ' ');
  const ids = opts.config.commands.map((c) => c.id.replace(/:/g, ' '));
  const words = wanted.split(' ');
  const near = ids.filter((id) => id.split(' ').some((w) => words.includes(w))).slice(0, 5);
  process.stderr.write(`Error: "${wanted}" is not an iotctl command.\nTry: ${near.length ? near.map((n) => `iotctl ${n}`).join(', ') : 'iotctl --help'}\n`);
  process.exit(1);
};

export default hook;
