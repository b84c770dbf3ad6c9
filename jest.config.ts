import type { Config } from 'jest';

/**
 * Jest runs on Node's native ES modules (`--experimental-vm-modules`, set in the `test` script),
 * because NestJS 12 ships ESM only. ts-jest compiles each file on its own (`isolatedModules` in
 * tsconfig.json), keeping legacy decorators and decorator metadata, which Nest's dependency
 * injection reads; type checking is `npm run typecheck`.
 *
 * Jest 29 and ts-jest are pure JavaScript: Jest 30 and @swc/jest pull per-platform native
 * binaries whose other-platform builds the package registry may not serve, which breaks `npm ci`.
 */
const config: Config = {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  transform: {
    '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: '<rootDir>/tsconfig.json' }],
  },
  moduleNameMapper: {
    '^nestjs-ratelimit$': '<rootDir>/lib/index.ts',
    '^(\\.{1,2}/.*)\\.js$': '$1',
    // Mercurius loads @fastify/static, whose content-disposition 3 is ESM only: Node 20.19 can
    // require() it, Jest 29 cannot. Version 2 (Express's) is the same API as CommonJS.
    '^content-disposition$': '<rootDir>/node_modules/content-disposition',
  },
  testMatch: ['<rootDir>/lib/**/*.spec.ts', '<rootDir>/test/**/*.spec.ts'],
  testTimeout: 30_000,
};

export default config;
