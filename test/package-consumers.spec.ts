/**
 * The published build works for both kinds of consumer on Node 20: an ES module importing it, and
 * a CommonJS module requiring it (through Node's require(esm), available unflagged since 20.19),
 * each on Express and on Fastify, in plain JavaScript; and as a TypeScript app set up as Nest 11's
 * starter is (CommonJS output of `module: nodenext`). `.ci/nest11` runs this file on Nest 11 too.
 * The package (its package.json, README, LICENSE and lib/) is copied into a throw-away
 * node_modules folder inside the repository and compiled there with the real build config, so
 * its files lie as in the published package and Nest resolves from the repository's own
 * node_modules, exactly as in an app; `npm pack --dry-run` there lists what would be published.
 */
import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const root = fileURLToPath(new URL('..', import.meta.url));

type Adapter = 'express' | 'fastify';

/** A consumer app in plain JavaScript: one limited route, one request over the limit. */
function consumerApp(kind: 'esm' | 'cjs', adapter: Adapter): string {
  const load =
    kind === 'esm'
      ? `import 'reflect-metadata';
import { Controller, Get, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import * as lib from 'nestjs-ratelimit';`
      : `require('reflect-metadata');
const { Controller, Get, Module } = require('@nestjs/common');
const { NestFactory } = require('@nestjs/core');
const { FastifyAdapter } = require('@nestjs/platform-fastify');
const lib = require('nestjs-ratelimit');`;
  const create =
    adapter === 'fastify'
      ? 'NestFactory.create(AppModule, new FastifyAdapter(), { logger: false })'
      : 'NestFactory.create(AppModule, { logger: false })';
  return `${load}
class Hello { hi() { return 'hi'; } }
Reflect.decorate([Get('hi')], Hello.prototype, 'hi', Object.getOwnPropertyDescriptor(Hello.prototype, 'hi'));
Reflect.decorate([lib.RateLimit({ minute: 1 }), Controller()], Hello);
class AppModule {}
Reflect.decorate([Module({ imports: [lib.RateLimitModule.forRoot({})], controllers: [Hello] })], AppModule);
const app = await ${create};
await app.listen(0, '127.0.0.1');
const url = await app.getUrl();
const first = await fetch(url.replace('[::1]', '127.0.0.1') + '/hi');
const second = await fetch(url.replace('[::1]', '127.0.0.1') + '/hi');
await app.close();
console.log(JSON.stringify({
  exports: ['RateLimitModule', 'Rule', 'MemoryBackend', 'EmptyInformation', 'RateLimitExceptionFilter'].every((name) => typeof lib[name] === 'function'),
  adapter: app.getHttpAdapter().getType(),
  statuses: [first.status, second.status],
  retryAfter: second.headers.get('retry-after'),
  body: await second.json(),
}));
`;
}

/**
 * A CommonJS TypeScript app as `nest new` sets one up for Nest 11: no `"type": "module"`, so
 * `module: nodenext` compiles it to `require()` calls; decorators and their metadata on; the
 * library's types checked where the app uses them.
 */
const TS_APP = `import 'reflect-metadata';
import { Controller, Get, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { RateLimit, RateLimitModule, type OnBlockedHandler } from 'nestjs-ratelimit';

@Controller()
class HelloController {
  @RateLimit({ minute: 1 })
  @Get('hi')
  hi(): string {
    return 'hi';
  }
}

const onBlocked: OnBlockedHandler = (info) => ({ error: 'slow down', retryAfter: info.retryAfter });

@Module({ imports: [RateLimitModule.forRoot({ onBlocked })], controllers: [HelloController] })
class AppModule {}

async function main(): Promise<void> {
  const app = await NestFactory.create(AppModule, { logger: false });
  await app.listen(0, '127.0.0.1');
  const url = (await app.getUrl()).replace('[::1]', '127.0.0.1');
  const first = await fetch(url + '/hi');
  const second = await fetch(url + '/hi');
  await app.close();
  console.log(JSON.stringify({ statuses: [first.status, second.status], body: await second.json() }));
}
void main();
`;

const TS_APP_CONFIG = {
  compilerOptions: {
    module: 'nodenext',
    moduleResolution: 'nodenext',
    target: 'ES2023',
    strict: true,
    experimentalDecorators: true,
    emitDecoratorMetadata: true,
    esModuleInterop: true,
    skipLibCheck: true,
    types: ['node'],
    rootDir: '.',
    outDir: 'dist',
  },
  files: ['main.ts'],
};

describe('the built package', () => {
  let dir: string;
  let pkg: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(root, '.tmp-consumer-'));
    pkg = join(dir, 'node_modules', 'nestjs-ratelimit');
    mkdirSync(pkg, { recursive: true });
    // Its own package.json, so 'nestjs-ratelimit' is not resolved as the repository's self-reference.
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'consumer', private: true }));
    for (const file of ['package.json', 'README.md', 'LICENSE', 'lib']) {
      cpSync(join(root, file), join(pkg, file), { recursive: true });
    }
    // The build config, applied to the copy: dist/ and its maps lie next to lib/ as in the repository.
    writeFileSync(
      join(pkg, 'tsconfig.json'),
      JSON.stringify({
        extends: join(root, 'tsconfig.build.json'),
        compilerOptions: { rootDir: './lib', outDir: './dist' },
        include: ['lib'],
        exclude: ['lib/**/*.spec.ts'],
      }),
    );
    await run(join(root, 'node_modules/.bin/tsc'), ['-p', join(pkg, 'tsconfig.json')], {
      cwd: root,
    });
    // As `npm run build` does: the Redis scripts are read at load from next to the modules.
    cpSync(join(pkg, 'lib/backends/redis/lua'), join(pkg, 'dist/backends/redis/lua'), {
      recursive: true,
    });
  }, 120_000);

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it.each([
    ['an ES module (import)', 'express', 'esm'],
    ['an ES module (import)', 'fastify', 'esm'],
    // A CommonJS file cannot use top-level await, so the CJS consumer runs inside an async IIFE.
    ['a CommonJS module (require)', 'express', 'cjs'],
    ['a CommonJS module (require)', 'fastify', 'cjs'],
  ] as const)(
    'loads and limits from %s on %s',
    async (_name, adapter, kind) => {
      const file = join(dir, `consumer-${adapter}.${kind === 'esm' ? 'mjs' : 'cjs'}`);
      const source =
        kind === 'cjs'
          ? `(async () => {\n${consumerApp(kind, adapter)}\n})().catch((e) => { console.error(e); process.exit(1); });`
          : consumerApp(kind, adapter);
      writeFileSync(file, source);
      const { stdout } = await run(process.execPath, [file], { cwd: dir, timeout: 30_000 });
      expect(JSON.parse(stdout.trim().split('\n').pop()!)).toEqual({
        exports: true,
        adapter,
        statuses: [200, 429],
        retryAfter: '60',
        // The default 429 body, the same on both adapters.
        body: {
          statusCode: 429,
          message: 'Too many requests, retry in 60 seconds',
          error: 'Too Many Requests',
        },
      });
    },
    60_000,
  );

  it('type-checks, compiles and runs in a CommonJS TypeScript app (module nodenext)', async () => {
    const app = join(dir, 'ts-cjs');
    mkdirSync(app);
    writeFileSync(join(app, 'main.ts'), TS_APP);
    writeFileSync(join(app, 'tsconfig.json'), JSON.stringify(TS_APP_CONFIG));
    await run(join(root, 'node_modules/.bin/tsc'), ['-p', join(app, 'tsconfig.json')], {
      cwd: app,
      timeout: 90_000,
    });
    const compiled = readFileSync(join(app, 'dist/main.js'), 'utf8');
    // CommonJS indeed: the package is loaded with require(), not import.
    expect(compiled).toContain('require("nestjs-ratelimit")');
    expect(compiled).not.toMatch(/^import /m);
    const { stdout } = await run(process.execPath, [join(app, 'dist/main.js')], {
      cwd: app,
      timeout: 30_000,
    });
    expect(JSON.parse(stdout.trim().split('\n').pop()!)).toEqual({
      statuses: [200, 429],
      body: { error: 'slow down', retryAfter: 60 },
    });
  }, 120_000);

  it('ships the sources its source maps point at, without the specs, and its licence', async () => {
    const { stdout } = await run('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
      cwd: pkg,
      timeout: 60_000,
    });
    const [packed] = JSON.parse(stdout) as { files: { path: string }[] }[];
    const shipped = new Set(packed!.files.map((file) => file.path));
    const maps = [...shipped].filter((path) => path.endsWith('.map'));
    // Both kinds: dist/*.js.map (stack traces, debuggers) and dist/*.d.ts.map (go to definition).
    expect(maps.filter((path) => path.endsWith('.d.ts.map')).length).toBeGreaterThan(10);
    expect(maps.filter((path) => path.endsWith('.js.map')).length).toBeGreaterThan(10);
    const unresolved: string[] = [];
    for (const map of maps) {
      const { sources, sourceRoot = '' } = JSON.parse(readFileSync(join(pkg, map), 'utf8')) as {
        sources: string[];
        sourceRoot?: string;
      };
      expect(sources.length).toBeGreaterThan(0);
      for (const source of sources) {
        const resolved = posix.normalize(posix.join(posix.dirname(map), sourceRoot, source));
        if (!shipped.has(resolved)) unresolved.push(`${map} -> ${source}`);
      }
    }
    expect(unresolved).toEqual([]);
    expect([...shipped].filter((path) => path.includes('.spec.'))).toEqual([]);
    expect(shipped.has('LICENSE')).toBe(true);
  }, 90_000);

  it('ships JSDoc in its type declarations', async () => {
    const { readFile } = await import('node:fs/promises');
    const dts = await readFile(
      join(dir, 'node_modules/nestjs-ratelimit/dist/rules/rule.d.ts'),
      'utf8',
    );
    expect(dts).toContain(
      'Requests allowed per second, or a {@link UnitLimitFunction} of the caller.',
    );
  });
});
