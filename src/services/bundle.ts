import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { homedir, tmpdir } from 'node:os';
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
  const result = await build({
    ...bundleOptions(template, runtime),
    outfile: artifactPath,
    plugins: [compiledSourcesFallback()],
    metafile: true,
  }).catch((error: { errors?: Array<{ text: string; location?: { file: string; line: number } | null }> }) => {
    const first = error.errors?.[0];
    throw new Error(`Bundling template "${templateName}" failed: ${first ? `${first.location ? `${first.location.file}:${first.location.line}: ` : ''}${first.text}` : String(error)}`);
  });
  const bytes = readFileSync(artifactPath);
  const built = { artifactPath, sha256: createHash('sha256').update(bytes).digest('hex'), bytes: bytes.length };
  rememberBundle(template, runtime, Object.keys(result.metafile?.inputs ?? {}), built);
  return built;
}

/** esbuild's options for a template, but for the output file and the plugin; part of the bundle cache's key. */
function bundleOptions(template: TemplateInfo, runtime: string) {
  return {
    absWorkingDir: packageRoot(),
    entryPoints: [join(template.dir, template.entry)],
    bundle: true,
    platform: 'node' as const,
    target: esbuildTarget(runtime),
    format: 'cjs' as const,
    external: ['pg-native'],
    keepNames: true,
    legalComments: 'none' as const,
    logLevel: 'silent' as const,
  };
}

// ------------------------------------------------------------------------------------------ bundle cache

/**
 * A plan compares a function's bundle hash with the deployed one; bundling (esbuild in its own process) costs
 * a few hundred ms per template. Each bundle is remembered with the sha256 of every input file esbuild read
 * (its metafile), keyed by the template, esbuild's version and the options: when no input changed, the bundle's
 * hash is known without bundling. `IOTCTL_CACHE_DIR` (else $XDG_CACHE_HOME/iotctl, else ~/.cache/iotctl) holds it.
 */
interface CachedBundle {
  inputs: Record<string, string>;
  sha256: string;
  bytes: number;
}

function cacheFile(): string {
  const dir = process.env.IOTCTL_CACHE_DIR ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'iotctl');
  return join(dir, 'bundles.json');
}

let esbuildVersion: string | undefined;

function cacheKey(template: TemplateInfo, runtime: string): string {
  if (esbuildVersion === undefined) {
    esbuildVersion = '';
    try {
      esbuildVersion = JSON.parse(readFileSync(createRequire(import.meta.url).resolve('esbuild/package.json'), 'utf8')).version as string;
    } catch {
      // No esbuild version, no reuse across versions: the key still names the template and options.
    }
  }
  return createHash('sha256').update(JSON.stringify({ template: template.name, esbuild: esbuildVersion, options: bundleOptions(template, runtime) })).digest('hex');
}

/** A file's identity for the memos below: read again only once it changed (size, mtime or inode). */
function stamp(path: string): string {
  const st = statSync(path, { bigint: true });
  return `${st.ino}:${st.size}:${st.mtimeNs}`;
}

// The cache file is read once per process while unchanged (a plan asks it for each template; it holds many).
let cacheMemo: { file: string; stamp: string; entries: Record<string, CachedBundle> } | undefined;

function readCache(): Record<string, CachedBundle> {
  const file = cacheFile();
  try {
    const now = stamp(file);
    if (cacheMemo?.file === file && cacheMemo.stamp === now) return cacheMemo.entries;
    const entries = JSON.parse(readFileSync(file, 'utf8')) as Record<string, CachedBundle>;
    cacheMemo = { file, stamp: now, entries };
    return entries;
  } catch {
    return {};
  }
}

// Templates share most inputs (pg and its dependencies): each file is hashed once per process while unchanged.
const hashMemo = new Map<string, { stamp: string; hash: string }>();

function fileHash(path: string): string {
  const now = stamp(path);
  const memo = hashMemo.get(path);
  if (memo?.stamp === now) return memo.hash;
  const hash = createHash('sha256').update(readFileSync(path)).digest('hex');
  hashMemo.set(path, { stamp: now, hash });
  return hash;
}

/** Best effort: a cache that cannot be written only means the next plan bundles again. */
function rememberBundle(template: TemplateInfo, runtime: string, inputs: string[], built: BundleResult): void {
  try {
    const root = packageRoot();
    const entry: CachedBundle = { inputs: Object.fromEntries(inputs.map((i) => [i, fileHash(resolve(root, i))])), sha256: built.sha256, bytes: built.bytes };
    const file = cacheFile();
    mkdirSync(dirname(file), { recursive: true });
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify({ ...readCache(), [cacheKey(template, runtime)]: entry }));
    renameSync(tmp, file);
  } catch {
    /* not cached */
  }
}

/** The bundle's hash when every input file esbuild read last time is unchanged; undefined otherwise. */
function cachedBundle(template: TemplateInfo, runtime: string): CachedBundle | undefined {
  const entry = readCache()[cacheKey(template, runtime)];
  if (!entry || !Object.keys(entry.inputs).length) return undefined;
  const root = packageRoot();
  try {
    for (const [input, hash] of Object.entries(entry.inputs)) if (fileHash(resolve(root, input)) !== hash) return undefined;
  } catch {
    return undefined;
  }
  return entry;
}

/** sha256 and size of a template's bundle: from the cache when its inputs are unchanged, else by bundling it. */
export async function bundleDigest(templateName: string, runtime: string = LAMBDA_RUNTIME): Promise<{ sha256: string; bytes: number }> {
  const cached = cachedBundle(getTemplate(templateName), runtime);
  if (cached) return { sha256: cached.sha256, bytes: cached.bytes };
  const dir = mkdtempSync(join(tmpdir(), 'iotctl-bundle-'));
  try {
    const { sha256, bytes } = await bundleTemplate(templateName, dir, runtime);
    return { sha256, bytes };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
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
