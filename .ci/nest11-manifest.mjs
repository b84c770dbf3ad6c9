#!/usr/bin/env node
// The package.json of the Nest 11 test install (see .ci/nest11): the repository's own, with every
// Nest package moved to its latest release for Nest 11 and the development tools that no test
// loads left out. Printed on standard output; `node .ci/nest11-manifest.mjs > package.json`.
//
// New devDependencies are carried over as they are, so a test that starts importing a new package
// runs on Nest 11 too. A new @nestjs/* package stops this script instead: its Nest 11 range must be
// chosen here by hand, or the install would mix a Nest 12 package into the Nest 11 tree.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** The range of each Nest package that goes with Nest 11 (npm picks the newest in it). */
const NEST_11 = {
  '@nestjs/common': '^11.0.0',
  '@nestjs/core': '^11.0.0',
  '@nestjs/platform-express': '^11.0.0',
  '@nestjs/platform-fastify': '^11.0.0',
  '@nestjs/testing': '^11.0.0',
  '@nestjs/websockets': '^11.0.0',
  '@nestjs/platform-ws': '^11.0.0',
  '@nestjs/platform-socket.io': '^11.0.0',
  '@nestjs/microservices': '^11.0.0',
  // @nestjs/jwt 11 is the release that came with Nest 11 (12 also accepts Nest 11).
  '@nestjs/jwt': '^11.0.0',
  // The GraphQL packages number one major ahead: 13 is for Nest 11, 14 for Nest 12.
  '@nestjs/graphql': '^13.0.0',
  '@nestjs/apollo': '^13.0.0',
  '@nestjs/mercurius': '^13.0.0',
};

/**
 * Development tools no test imports: the Nest CLI (`npm start`), the benchmark's competitors and
 * load generator, the linters, and recheck (lib/rules/pattern-safety.spec.ts, which has nothing to
 * do with Nest and is left to the Nest 12 pass; see .ci/nest11). Fewer packages, a faster install.
 */
const LEFT_OUT = new Set([
  '@nestjs/cli',
  '@nestjs/throttler',
  '@nest-lab/throttler-storage-redis',
  'autocannon',
  'rate-limiter-flexible',
  'recheck',
  '@eslint/js',
  'eslint',
  'eslint-config-prettier',
  'globals',
  'prettier',
  'typescript-eslint',
]);

const manifest = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));

/** `npm view <spec> <field> --json`, parsed. */
async function view(spec, field) {
  const { stdout } = await run('npm', ['view', spec, field, '--json'], { timeout: 120_000 });
  return JSON.parse(stdout);
}

/** Orders release versions (x.y.z) numerically. */
function compareVersions(a, b) {
  const [x, y] = [a, b].map((version) => version.split('.').map(Number));
  return x[0] - y[0] || x[1] - y[1] || x[2] - y[2];
}

/**
 * The newest release of `name` in `range`. The registry lists versions in publishing order, which
 * is not version order when an older line gets a fix later; pre-releases never count.
 */
async function newest(name, range) {
  const versions = [await view(`${name}@${range}`, 'version')].flat();
  const releases = versions.filter((version) => /^\d+\.\d+\.\d+$/.test(version));
  if (releases.length === 0) throw new Error(`no release of ${name} in ${range}`);
  return releases.sort(compareVersions).at(-1);
}

const entries = Object.entries(manifest.devDependencies).filter(([name]) => !LEFT_OUT.has(name));
const unknown = entries.filter(([name]) => name.startsWith('@nestjs/') && !(name in NEST_11));
if (unknown.length > 0) {
  const names = unknown.map(([name]) => name).join(', ');
  throw new Error(`.ci/nest11-manifest.mjs: choose the Nest 11 range of ${names} in NEST_11`);
}
// Exact versions, looked up together: the install then holds the newest Nest 11 releases whatever
// the repository's lockfile says, and a new release changes this file (so .ci/nest11 reinstalls).
const devDependencies = Object.fromEntries(
  await Promise.all(
    entries.map(async ([name, range]) => [
      name,
      name in NEST_11 ? await newest(name, NEST_11[name]) : range,
    ]),
  ),
);

// Fastify as @nestjs/platform-fastify 11 pins it, so the tests' plugins and the adapter share one
// copy, as in a Nest 11 application that installs only the adapter.
if ('fastify' in devDependencies && '@nestjs/platform-fastify' in devDependencies) {
  const adapter = `@nestjs/platform-fastify@${devDependencies['@nestjs/platform-fastify']}`;
  devDependencies.fastify = await view(adapter, 'dependencies.fastify');
}

// Overrides of packages left out go with them (the benchmark's throttler storage, aligned there
// with Nest 12); any other stays.
const overrides = Object.fromEntries(
  Object.entries(manifest.overrides ?? {}).filter(([name]) => !LEFT_OUT.has(name)),
);
const { overrides: _all, ...rest } = manifest;
const result = { ...rest, devDependencies };
if (Object.keys(overrides).length > 0) result.overrides = overrides;
process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
