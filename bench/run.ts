/**
 * `npm run bench` (and `npm run bench:quick`): the whole benchmark of issue 4. Starts a dedicated
 * Redis, runs the HTTP suites and the micro-benchmarks, writes `bench/results.json` and renders
 * `bench/RESULTS.md` from it. A quick run writes to `dist-bench/` instead, so it never replaces the
 * full results.
 *
 * @module
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { arch, cpus, loadavg, release, tmpdir, totalmem, type } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  guardTimingRun,
  profileRun,
  profileSeconds,
  runHttpSuites,
  type SuitePlan,
} from './http/driver.js';
import { summarizeProfile } from './http/profile.js';
import { VARIANT_NAMES, VARIANTS, type VariantName } from './http/variants.js';
import { runMicro } from './micro/index.js';
import { installExitHooks } from './support/children.js';
import { cpuPlan, pin, type CpuPlan } from './support/cpu.js';
import { modeFromArgs, type BenchMode } from './support/mode.js';
import { outputFiles, writeResults } from './support/output.js';
import { startBenchRedis, type BenchRedis } from './support/redis.js';
import type { BenchResults, MachineInfo } from './support/results.js';

/** The repository root (this file runs from dist-bench/bench/). */
const ROOT = fileURLToPath(new URL('../../', import.meta.url)).replace(/\/$/, '');

/** The memory variant's target, below which its server is profiled. */
const MEMORY_TARGET = 0.95;
/** Runs of the in-server guard timing (diagnostics). */
const GUARD_TIMING_RUNS = 3;

/** Variants of the many-users suite: every in-memory limiter, and this module on Redis. */
const USERS_VARIANTS: readonly VariantName[] = [
  'bare',
  'ratelimit-memory',
  'ratelimit-redis',
  'throttler-memory',
  'rlf-memory',
];

const startedAt = Date.now();

function log(line: string): void {
  const seconds = Math.round((Date.now() - startedAt) / 1000);
  const stamp = `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, '0')}`;
  console.log(`[${stamp}] ${line}`);
}

function machine(): MachineInfo {
  const list = cpus();
  return {
    cpuModel: list[0]?.model.trim() ?? 'unknown',
    cores: list.length,
    memoryBytes: totalmem(),
    os: `${type()} ${arch()}`,
    kernel: release(),
  };
}

async function packageVersion(name: string): Promise<string> {
  try {
    const path = join(ROOT, name === '.' ? '' : `node_modules/${name}`, 'package.json');
    return (JSON.parse(await readFile(path, 'utf8')) as { version: string }).version;
  } catch {
    return 'not installed';
  }
}

/**
 * A fingerprint of the built library (every file under dist/), to notice a rebuild during the
 * run: servers start all along the run and each loads dist/ afresh.
 */
async function distFingerprint(): Promise<string> {
  const hash = createHash('sha256');
  try {
    const files = (await readdir(join(ROOT, 'dist'), { recursive: true, withFileTypes: true }))
      .filter((entry) => entry.isFile())
      .map((entry) => join(entry.parentPath, entry.name))
      .sort();
    for (const file of files) hash.update(file).update(await readFile(file));
    return `${files.length} files, sha256 ${hash.digest('hex').slice(0, 16)}`;
  } catch (error) {
    return `unreadable (${error instanceof Error ? error.message : error})`;
  }
}

function gitRevision(): string {
  try {
    const options = { cwd: ROOT, timeout: 5_000 };
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], options).toString().trim();
    const dirty = execFileSync('git', ['status', '--porcelain'], options).toString().trim() !== '';
    return dirty ? `${head} + uncommitted changes` : head;
  } catch {
    return 'unknown';
  }
}

async function versions(): Promise<Record<string, string>> {
  const names = [
    '@nestjs/core',
    '@nestjs/common',
    '@nestjs/platform-express',
    'express',
    '@nestjs/platform-fastify',
    'fastify',
    '@nestjs/throttler',
    '@nest-lab/throttler-storage-redis',
    'rate-limiter-flexible',
    'ioredis',
    'autocannon',
    'typescript',
  ];
  const result: Record<string, string> = {
    node: process.version,
    'nestjs-ratelimit': `${await packageVersion('.')} (${gitRevision()})`,
  };
  for (const name of names) result[name] = await packageVersion(name);
  return result;
}

function suitePlans(mode: BenchMode, withRedis: boolean): SuitePlan[] {
  const usable = (name: VariantName): boolean => withRedis || !VARIANTS[name].redis;
  return [
    {
      id: 'main',
      // Express and Fastify variants in one suite, so both are measured interleaved.
      title: 'One busy key: every request from one client (127.0.0.1), each library keyed by IP',
      cases: VARIANT_NAMES.filter(usable).map((variant) => ({
        variant,
        identity: 'ip' as const,
        users: 1,
      })),
    },
    {
      id: 'users',
      title: `1 vs ${mode.http.manyUsers.toLocaleString('en-US')} distinct users (x-user header)`,
      cases: USERS_VARIANTS.filter(usable).flatMap((variant) =>
        [1, mode.http.manyUsers].map((users) => ({ variant, identity: 'header' as const, users })),
      ),
    },
  ];
}

/** Profiles this module's memory variant when it misses its target. */
async function maybeProfile(
  results: BenchResults,
  mode: BenchMode,
  cores: CpuPlan | undefined,
): Promise<void> {
  const memory = results.http.suites
    .find((suite) => suite.id === 'main')
    ?.cases.find((c) => c.variant === 'ratelimit-memory');
  const ratio = memory?.summary?.ratioToBare;
  if (ratio === undefined || ratio >= MEMORY_TARGET) return;
  const dir = await mkdtemp(join(tmpdir(), 'nestjs-ratelimit-prof-'));
  try {
    log(`profiling ratelimit-memory (${ratio.toFixed(3)}× bare < ${MEMORY_TARGET})`);
    await profileRun(
      { variant: 'ratelimit-memory', identity: 'ip', users: 1 },
      mode.http,
      undefined,
      cores?.subject,
      dir,
    );
    const file = (await readdir(dir)).find((name) => name.endsWith('.cpuprofile'));
    if (file === undefined) throw new Error('the server wrote no .cpuprofile');
    log('timing RateLimitGuard.canActivate inside the server');
    const timing = await guardTimingRun(
      { variant: 'ratelimit-memory', identity: 'ip', users: 1 },
      mode.http,
      cores?.subject,
      GUARD_TIMING_RUNS,
    );
    results.profile = {
      variant: 'ratelimit-memory',
      reason: `its throughput was ${ratio.toFixed(3)}× bare, below the ${MEMORY_TARGET} target`,
      seconds: profileSeconds(mode.http),
      summary: summarizeProfile(join(dir, file), ROOT),
      guardTiming: timing,
    };
  } catch (error) {
    results.problems.push(`Profiling failed: ${error instanceof Error ? error.message : error}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  installExitHooks();
  const mode = modeFromArgs(process.argv.slice(2));
  const files = outputFiles(ROOT, mode.name, mode.microOnly);
  log(`nestjs-ratelimit benchmark, ${mode.name} mode; results go to ${files.markdown}`);
  const cores = cpuPlan(cpus().length);
  // Before anything starts: redis-server and every child inherit the driver's cores.
  if (cores !== undefined) pin(process.pid, cores.driver);
  const results: BenchResults = {
    schema: 1,
    mode: mode.name,
    command:
      (mode.name === 'quick' ? 'npm run bench:quick' : 'npm run bench') +
      (mode.microOnly ? ' -- --micro-only' : ''),
    startedAt: new Date(startedAt).toISOString(),
    machine: machine(),
    cpuPinning: cores?.description ?? 'none (fewer than 2 cores, or no taskset)',
    loadAverage: { start: loadavg() },
    versions: await versions(),
    http: { settings: mode.http, suites: [] },
    problems: [],
  };
  const distAtStart = await distFingerprint();
  results.versions['dist/ (built library)'] = distAtStart;
  let redis: BenchRedis | undefined;
  try {
    try {
      redis = await startBenchRedis();
      results.versions['redis-server'] = redis.version;
      log(`redis-server ${redis.version} on ${redis.url}`);
    } catch (error) {
      results.problems.push(
        `No Redis (the Redis variants were skipped): ${error instanceof Error ? error.message : error}`,
      );
    }
    if (!mode.microOnly) {
      const suites = await runHttpSuites(
        suitePlans(mode, redis !== undefined),
        mode.http,
        redis,
        cores?.subject,
        results.problems,
        log,
      );
      results.http.suites.push(...suites);
      await maybeProfile(results, mode, cores);
    }
    if (cores !== undefined) {
      // The micro-benchmarks run unpinned: a client and redis-server on fixed, different cores
      // pay a cross-core wake-up on every sequential round trip.
      pin(process.pid, cores.all);
      if (redis !== undefined) pin(redis.pid, cores.all);
    }
    results.micro = await runMicro(mode.micro, redis, results.problems, log);
  } finally {
    await redis?.stop().catch((error: unknown) => {
      results.problems.push(`Stopping Redis failed: ${String(error)}`);
    });
    const distAtEnd = await distFingerprint();
    if (distAtEnd !== distAtStart) {
      results.problems.push(
        `dist/ changed during the run (${distAtStart} at the start, ${distAtEnd} at the end): ` +
          'someone rebuilt the library, so later servers may have loaded other code.',
      );
    }
    results.finishedAt = new Date().toISOString();
    results.loadAverage.end = loadavg();
    results.totalSeconds = (Date.now() - startedAt) / 1000;
    await mkdir(dirname(files.json), { recursive: true });
    await writeResults(results, files);
    log(`wrote ${files.json} and ${files.markdown}`);
  }
  for (const problem of results.problems) log(`PROBLEM: ${problem}`);
  log(`done in ${Math.round(results.totalSeconds)} s`);
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
    process.exit(1);
  },
);
