import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { formatViolations, startRealism, type Realism, type RealismOptions } from './aws-realism.js';

/**
 * moto_server: a Python implementation of the AWS APIs (not written here), started on a free loopback
 * port for the aws-target tests. `env` points the SDK (and the CLI) at it with dummy credentials.
 */
export interface Moto {
  url: string;
  env: Record<string, string>;
  /** Forget every resource (POST /moto-api/reset). */
  reset(): Promise<void>;
  stop(): Promise<void>;
  /** The realism proxy in front of moto (aws-realism.ts), when asked for. */
  realism?: Realism;
}

export function motoAvailable(): boolean {
  return spawnSync('moto_server', ['--help'], { stdio: 'ignore' }).status === 0;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/**
 * `realism` puts the realism proxy (aws-realism.ts) between the SDK and moto: `url` and `env` then point at it.
 * IOTCTL_TEST_REALISM=1 does the same for every test file that starts moto, without editing it: conformance on,
 * latency IOTCTL_TEST_REALISM_LATENCY ms (default 0), faults from IOTCTL_TEST_REALISM_OPTIONS (RealismOptions as
 * JSON: `{"iamPropagationSeconds":5,"creating":{"kinesisMs":3000}}`); at stop the distinct violations go to stderr
 * and, as JSON lines, to the file IOTCTL_TEST_REALISM_REPORT when set.
 */
export async function startMoto(opts: { realism?: boolean | Omit<RealismOptions, 'target'> } = {}): Promise<Moto> {
  const fromEnv = !opts.realism && process.env.IOTCTL_TEST_REALISM === '1';
  const moto = await startMotoServer();
  if (!opts.realism && !fromEnv) return moto;
  const fromEnvOptions = fromEnv && process.env.IOTCTL_TEST_REALISM_OPTIONS ? (JSON.parse(process.env.IOTCTL_TEST_REALISM_OPTIONS) as Omit<RealismOptions, 'target'>) : {};
  const realism = await startRealism({ latencyMs: Number(process.env.IOTCTL_TEST_REALISM_LATENCY ?? 0), ...fromEnvOptions, ...(typeof opts.realism === 'object' ? opts.realism : {}), target: moto.url });
  return {
    url: realism.url,
    env: { ...moto.env, AWS_ENDPOINT_URL: realism.url },
    realism,
    async reset() {
      realism.forget();
      await moto.reset();
    },
    async stop() {
      if (fromEnv) {
        const found = realism.distinctViolations();
        if (found.length) process.stderr.write(`\n[realism] ${found.length} distinct AWS model violations:\n${formatViolations(found)}\n`);
        else process.stderr.write(`\n[realism] no AWS model violations in ${realism.calls().length} calls\n`);
        const report = process.env.IOTCTL_TEST_REALISM_REPORT;
        if (report) {
          const calls: Record<string, Record<string, number>> = {};
          for (const c of realism.calls()) (calls[c.key] ??= {})[c.injected ?? c.status] = (calls[c.key]?.[c.injected ?? c.status] ?? 0) + 1;
          appendFileSync(report, [...found.map((v) => ({ file: process.argv[1], ...v })), { file: process.argv[1], calls }].map((x) => JSON.stringify(x) + '\n').join(''));
        }
      }
      await realism.close();
      await moto.stop();
    },
  };
}

async function startMotoServer(): Promise<Moto> {
  if (!motoAvailable()) throw new Error("moto_server is not installed: pip install 'moto[server]' (see README, aws tests)");
  const port = await freePort();
  const child: ChildProcess = spawn('moto_server', ['-H', '127.0.0.1', '-p', String(port)], { stdio: ['ignore', 'ignore', 'pipe'], detached: false });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr = (stderr + d).slice(-4000)));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`moto_server exited: ${stderr}`);
    try {
      const res = await fetch(`${url}/moto-api/`);
      if (res.ok) break;
    } catch {
      /* not up yet */
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`moto_server did not start on ${url}: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const env = {
    AWS_ENDPOINT_URL: url,
    AWS_ACCESS_KEY_ID: 'test',
    AWS_SECRET_ACCESS_KEY: 'test',
    AWS_REGION: 'us-east-1',
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    // Keep the SDK away from the machine's own profiles and instance metadata.
    AWS_CONFIG_FILE: '/dev/null',
    AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
    AWS_EC2_METADATA_DISABLED: 'true',
  };
  return {
    url,
    env,
    async reset() {
      await fetch(`${url}/moto-api/reset`, { method: 'POST' });
    },
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
    },
  };
}

/** Apply moto's env to this process (for in-process adapter tests); returns a restore function. */
export function useEnv(env: Record<string, string>): () => void {
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  return () => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  };
}
