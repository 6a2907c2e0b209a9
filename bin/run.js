#!/usr/bin/env node
// `iotctl --version` is answered without loading oclif (about 0.1 s of start-up); same output as oclif's.
const argv = process.argv.slice(2);
if (argv.length === 1 && (argv[0] === '--version' || argv[0] === '-v' || argv[0] === 'version')) {
  const { readFileSync } = await import('node:fs');
  const { name, version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
  process.stdout.write(`${name}/${version} ${process.platform}-${process.arch} node-${process.version}\n`);
} else {
  // The most used read-only commands answer without loading oclif (dist/lean.js); it declines everything else.
  const { runLean } = await import('../dist/lean.js');
  if (!(await runLean(argv, process.argv[1]))) {
    // The subpath, not '@oclif/core': its index also loads help, ux and semver, which most commands never use.
    const { execute } = await import('@oclif/core/execute');
    await execute({ dir: import.meta.url });
  }
}
