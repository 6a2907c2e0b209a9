import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Plugin } from 'esbuild';
import type { DatabaseRole } from '../db/roles.js';
import { UserError } from '../ui/errors.js';
import { DEFAULT_RUNTIME, esbuildTarget } from '../spec/runtimes.js';

/**
 * Lambda templates (templates/<name>/template.json + handler.ts) and their one artifact: a single
 * CommonJS index.js with its dependencies (pg) bundled in, the same file the local function runner
 * loads and the aws target zips.
 */
export interface TemplateInfo {
  name: string;
  description: string;
  runtime: string;
  /** The Lambda handler string, e.g. "index.handler". */
  handler: string;
  /** The TypeScript entry point inside the template's directory. */
  entry: string;
  timeoutSeconds?: number;
  memoryMb?: number;
  environment: Record<string, string>;
  eventSource?: Record<string, unknown>;
  /** The database role (src/db/roles.ts) the function logs in as; the target gives it that role's credentials. */
  databaseRole?: DatabaseRole;
  /** Absolute path of the template's directory. */
  dir: string;
}

export interface BundleResult {
  artifactPath: string;
  sha256: string;
  bytes: number;
}

let packageRootCache: string | undefined;

/** The iotctl package root (the directory of its package.json), from src/ under tsx or from dist/. */
export function packageRoot(): string {
  if (packageRootCache) return packageRootCache;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && JSON.parse(readFileSync(pkg, 'utf8')).name === 'iotctl') return (packageRootCache = dir);
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`Cannot find the iotctl package root above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
}

export function templatesDir(): string {
  return join(packageRoot(), 'templates');
}

export function listTemplates(): TemplateInfo[] {
  const root = templatesDir();
  if (!existsSync(root)) return [];
  return readdirSync(root, { withFileTypes: true })
    .filter((e) => e.isDirectory() && existsSync(join(root, e.name, 'template.json')))
    .map((e) => readTemplate(join(root, e.name)))
    .sort((a, b) => a.name.localeCompare(b.name));
}

export function getTemplate(name: string): TemplateInfo {
  const found = listTemplates().find((t) => t.name === name);
  if (!found) {
    const names = listTemplates().map((t) => t.name);
    throw new UserError(`Unknown function template "${name}".`, names.length ? `use one of: ${names.join(', ')}.` : 'reinstall iotctl: its templates directory is missing.', 'TEMPLATE_NOT_FOUND');
  }
  return found;
}

/** The role a function of this template logs in as: its template's databaseRole, else the ingest role. */
export function templateDatabaseRole(templateName: string): DatabaseRole {
  let role = databaseRoles.get(templateName);
  if (!role) {
    try {
      role = getTemplate(templateName).databaseRole ?? 'writer';
    } catch {
      role = 'writer';
    }
    // Asked for every invocation: read the template once.
    databaseRoles.set(templateName, role);
  }
  return role;
}

const databaseRoles = new Map<string, DatabaseRole>();

function readTemplate(dir: string): TemplateInfo {
  const raw = JSON.parse(readFileSync(join(dir, 'template.json'), 'utf8')) as Partial<TemplateInfo>;
  return {
    name: raw.name ?? dir.split(sep).pop()!,
    description: raw.description ?? '',
    runtime: raw.runtime ?? LAMBDA_RUNTIME,
    handler: raw.handler ?? 'index.handler',
    entry: raw.entry ?? 'handler.ts',
    timeoutSeconds: raw.timeoutSeconds,
    memoryMb: raw.memoryMb,
    environment: raw.environment ?? {},
    eventSource: raw.eventSource,
    databaseRole: raw.databaseRole,
    dir,
  };
}

/**
 * The Lambda runtime a function gets unless iotctl.yaml sets `runtime:` (spec/runtimes.ts keeps Lambda's
 * deprecation dates): Node.js 20 reached end of life on 2026-04-30, after which Lambda deprecates nodejs20.x
 * and then blocks creating and updating functions on it. The bundle targets the runtime's Node.js version.
 */
export const LAMBDA_RUNTIME = DEFAULT_RUNTIME;

/**
 * Bundles a template with esbuild into `<outDir>/index.js` (CJS, for the runtime's Node.js version, pg included; pg-native,
 * which pg only loads on request, stays external). Paths in the output are relative to the package
 * root, so the same sources always give the same bytes and the same sha256.
 */
export async function bundleTemplate(templateName: string, outDir: string, runtime: string = LAMBDA_RUNTIME): Promise<BundleResult> {
  const template = getTemplate(templateName);
  const { build } = await import('esbuild');
  mkdirSync(outDir, { recursive: true });
  const artifactPath = resolve(outDir, 'index.js');
  await build({
    absWorkingDir: packageRoot(),
    entryPoints: [join(template.dir, template.entry)],
    outfile: artifactPath,
    bundle: true,
    platform: 'node',
    target: esbuildTarget(runtime),
    format: 'cjs',
    external: ['pg-native'],
    plugins: [compiledSourcesFallback()],
    keepNames: true,
    legalComments: 'none',
    logLevel: 'silent',
  }).catch((error: { errors?: Array<{ text: string; location?: { file: string; line: number } | null }> }) => {
    const first = error.errors?.[0];
    throw new Error(`Bundling template "${templateName}" failed: ${first ? `${first.location ? `${first.location.file}:${first.location.line}: ` : ''}${first.text}` : String(error)}`);
  });
  const bytes = readFileSync(artifactPath);
  return { artifactPath, sha256: createHash('sha256').update(bytes).digest('hex'), bytes: bytes.length };
}

/**
 * Templates import the shared code from src/ (e.g. ../../src/db/batch-writer.js). An installed
 * package ships only dist/, so when src/ is absent the import resolves to the compiled dist/ file.
 */
function compiledSourcesFallback(): Plugin {
  return {
    name: 'iotctl-src-fallback',
    setup(build) {
      const root = packageRoot();
      build.onResolve({ filter: /\/src\// }, (args) => {
        if (!args.importer) return undefined;
        const target = resolve(args.resolveDir, args.path);
        const rel = relative(join(root, 'src'), target);
        if (rel.startsWith('..')) return undefined;
        if (existsSync(target.replace(/\.js$/, '.ts')) || existsSync(target)) return undefined;
        const compiled = join(root, 'dist', rel);
        return existsSync(compiled) ? { path: compiled } : undefined;
      });
    },
  };
}
