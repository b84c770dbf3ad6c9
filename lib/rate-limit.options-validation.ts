import { RateLimitBackend } from './backends/rate-limit.backend.js';
import { RateLimitConfigError } from './rate-limit-config.error.js';
import type { RateLimitModuleOptions } from './rate-limit.options.js';
import { describe } from './rules/rule.js';

const OPTION_NAMES: ReadonlySet<string> = new Set([
  'backend',
  'authenticate',
  'config',
  'onBlocked',
  'onAuthError',
  'headers',
  'failurePolicy',
  'backendTimeoutMs',
  'fallbackBackend',
  // Extras of forRoot(); ConfigurableModuleBuilder leaves them in the options object.
  'isGlobal',
  'useGlobalGuard',
  'useGlobalFilter',
  'imports',
]);

const HEADER_FORMATS: readonly unknown[] = [false, 'draft-10', 'legacy', 'both'];

function fail(option: string, problem: string): never {
  throw new RateLimitConfigError(
    'RATE_LIMIT_INVALID_OPTION',
    `Invalid rate-limit option "${option}": ${problem}`,
  );
}

function assertBackend(option: string, value: unknown): void {
  if (value !== undefined && !(value instanceof RateLimitBackend)) {
    fail(
      option,
      `expected a RateLimitBackend such as new MemoryBackend(), got ${describe(value)}.`,
    );
  }
}

/**
 * Checks the module options when the application starts, so a typo or a wrong type is reported
 * with the option's name instead of surfacing as odd behaviour at request time. The rule table
 * and `authenticate` are checked where they are compiled.
 */
export function assertValidOptions(options: RateLimitModuleOptions): void {
  if (options === null || typeof options !== 'object') {
    fail('options', `expected an object, got ${describe(options)}.`);
  }
  for (const name of Object.keys(options)) {
    if (!OPTION_NAMES.has(name)) {
      fail(
        name,
        `is not an option of RateLimitModule. Known options: ${[...OPTION_NAMES].join(', ')}.`,
      );
    }
  }
  const { backend, fallbackBackend, failurePolicy, onBlocked, onAuthError, headers } = options;
  assertBackend('backend', backend);
  assertBackend('fallbackBackend', fallbackBackend);
  if (fallbackBackend !== undefined && failurePolicy !== 'fallback') {
    fail(
      'fallbackBackend',
      `is only used with failurePolicy: 'fallback'; set that policy or remove the option.`,
    );
  }
  if (onBlocked !== undefined && typeof onBlocked !== 'function') {
    fail('onBlocked', `expected a function (info, host) => body, got ${describe(onBlocked)}.`);
  }
  if (onAuthError !== undefined && typeof onAuthError !== 'function') {
    fail(
      'onAuthError',
      `expected a function (error, context) => identity | undefined, got ${describe(onAuthError)}.`,
    );
  }
  if (headers !== undefined && !HEADER_FORMATS.includes(headers)) {
    fail('headers', `expected false, 'draft-10', 'legacy' or 'both', got ${describe(headers)}.`);
  }
}
