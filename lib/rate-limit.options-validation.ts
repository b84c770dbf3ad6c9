import { RateLimitBackend } from './backends/rate-limit.backend.js';
import { assertValidMetricsOption } from './events/decision-metrics.js';
import { RATE_LIMIT_CONTEXT_TYPES, type RateLimitContextType } from './http/context-type.js';
import type { RateLimitModuleOptions } from './rate-limit.options.js';
import {
  closestMatch,
  describeValue,
  optionFailure,
  rejectUnknownKeys,
  type FailOption,
} from './config-validation.js';

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
  'contexts',
  'mode',
  'onDecision',
  'metrics',
  'skip',
  'enabled',
  'localRejectCache',
  // Extras of forRoot(); ConfigurableModuleBuilder leaves them in the options object.
  'isGlobal',
  'useGlobalGuard',
  'useGlobalFilter',
  'imports',
]);

/** Misspellings seen in the wild (and the Python original's names), with the option meant. */
const OPTION_HINTS: Readonly<Record<string, string>> = {
  on_blocked: 'onBlocked',
  onBlock: 'onBlocked',
  on_auth_error: 'onAuthError',
  auth: 'authenticate',
  rules: 'config',
  header: 'headers',
  timeout: 'backendTimeoutMs',
  failOpen: 'failurePolicy',
  context: 'contexts',
  transports: 'contexts',
  skipIf: 'skip',
  shouldSkip: 'skip',
  ignore: 'skip',
  dryRun: 'mode',
  shadow: 'mode',
  onEvent: 'onDecision',
  onDecided: 'onDecision',
  disabled: 'enabled',
  enable: 'enabled',
  telemetry: 'metrics',
  rejectCache: 'localRejectCache',
};

const HEADER_FORMATS: readonly unknown[] = [false, 'draft-10', 'legacy', 'both'];
const HEADER_FORMAT_NAMES: readonly string[] = ['draft-10', 'legacy', 'both'];

const fail: FailOption = optionFailure('RateLimitModule');

/** Other names users give the context types (lower case), with the type meant. */
const CONTEXT_HINTS: Readonly<Record<string, RateLimitContextType>> = {
  rest: 'http',
  express: 'http',
  fastify: 'http',
  gql: 'graphql',
  apollo: 'graphql',
  mercurius: 'graphql',
  websocket: 'ws',
  websockets: 'ws',
  'socket.io': 'ws',
  gateway: 'ws',
  microservice: 'rpc',
  microservices: 'rpc',
  tcp: 'rpc',
};

/** The context type a wrong `contexts` entry probably meant, if any. */
function contextHint(entry: unknown): RateLimitContextType | undefined {
  if (typeof entry !== 'string') return undefined;
  const lower = entry.toLowerCase();
  return Object.hasOwn(CONTEXT_HINTS, lower)
    ? CONTEXT_HINTS[lower]
    : (closestMatch(entry, RATE_LIMIT_CONTEXT_TYPES) as RateLimitContextType | undefined);
}

function assertContexts(value: unknown): void {
  if (value === undefined) return;
  const names = RATE_LIMIT_CONTEXT_TYPES.map((type) => `'${type}'`).join(', ');
  if (!Array.isArray(value)) {
    const single = RATE_LIMIT_CONTEXT_TYPES.includes(value as RateLimitContextType);
    fail(
      'contexts',
      `expected an array of context types (${names}), got ${describeValue(value)}` +
        `${single ? `; write ['${String(value)}']` : ''}.`,
    );
  }
  for (const entry of value as unknown[]) {
    if (RATE_LIMIT_CONTEXT_TYPES.includes(entry as RateLimitContextType)) continue;
    const closest = contextHint(entry);
    fail(
      'contexts',
      `has ${describeValue(entry)}, which is not a context type; use ${names}` +
        `${closest === undefined ? '' : ` (did you mean '${closest}'?)`}.`,
    );
  }
}

function assertBackend(option: string, value: unknown): void {
  if (value === undefined || value instanceof RateLimitBackend) return;
  let hint = '';
  if (typeof value === 'function' && value.prototype instanceof RateLimitBackend) {
    hint = ` (the class itself: pass an instance, new ${value.name}(...))`;
  } else if (
    typeof value === 'object' &&
    value !== null &&
    typeof Reflect.get(value, 'consume') === 'function'
  ) {
    // Two installed copies of this package, or a hand-written store that only looks like one.
    hint =
      ' with a consume() method that does not extend RateLimitBackend: extend the ' +
      'RateLimitBackend of the nestjs-ratelimit the application imports (check that only one ' +
      'copy is installed: npm ls nestjs-ratelimit)';
  }
  fail(
    option,
    `expected a RateLimitBackend such as new MemoryBackend(), got ${describeValue(value)}${hint}.`,
  );
}

/** The hint for a `headers` value that is none of the formats. */
function headersHint(value: unknown): string {
  if (value === true) return "; for the IETF RateLimit-Policy and RateLimit fields use 'draft-10'";
  const closest = typeof value === 'string' ? closestMatch(value, HEADER_FORMAT_NAMES) : undefined;
  return closest === undefined ? '' : `; did you mean '${closest}'?`;
}

/**
 * Checks the module options when the application starts, so a typo or a wrong type is reported
 * with the option's name instead of surfacing as odd behaviour at request time. The rule table
 * and `authenticate` are checked where they are compiled.
 */
export function assertValidOptions(options: RateLimitModuleOptions): void {
  if (options === null || typeof options !== 'object') {
    fail('options', `expected an object, got ${describeValue(options)}.`);
  }
  rejectUnknownKeys(options, OPTION_NAMES, OPTION_HINTS, 'a RateLimitModule option', fail);
  const { backend, fallbackBackend, failurePolicy, onBlocked, onAuthError, headers, contexts } =
    options;
  assertContexts(contexts);
  assertBackend('backend', backend);
  assertBackend('fallbackBackend', fallbackBackend);
  if (fallbackBackend !== undefined && failurePolicy !== 'fallback') {
    fail(
      'fallbackBackend',
      `is only used with failurePolicy: 'fallback'; set that policy or remove the option.`,
    );
  }
  if (onBlocked !== undefined && typeof onBlocked !== 'function') {
    fail('onBlocked', `expected a function (info, host) => body, got ${describeValue(onBlocked)}.`);
  }
  if (onAuthError !== undefined && typeof onAuthError !== 'function') {
    fail(
      'onAuthError',
      `expected a function (error, context) => identity | undefined, got ${describeValue(onAuthError)}.`,
    );
  }
  assertOperations(options);
  if (headers !== undefined && !HEADER_FORMATS.includes(headers)) {
    fail(
      'headers',
      `expected false, 'draft-10', 'legacy' or 'both', got ${describeValue(headers)}` +
        `${headersHint(headers)}.`,
    );
  }
}

/** The options of SPEC 7: mode, listeners, metrics, skip, enabled, the reject cache. */
function assertOperations(options: RateLimitModuleOptions): void {
  const { mode, onDecision, metrics, skip, enabled, localRejectCache } = options;
  if (mode !== undefined && mode !== 'enforce' && mode !== 'shadow') {
    fail(
      'mode',
      `expected 'enforce' or 'shadow' (decide and count, but never reject), got ${describeValue(mode)}.`,
    );
  }
  if (onDecision !== undefined && typeof onDecision !== 'function') {
    fail('onDecision', `expected a function (event) => void, got ${describeValue(onDecision)}.`);
  }
  if (skip !== undefined && typeof skip !== 'function') {
    fail(
      'skip',
      `expected a function (context) => boolean (true: not limited), got ${describeValue(skip)}.`,
    );
  }
  if (enabled !== undefined && typeof enabled !== 'boolean') {
    fail(
      'enabled',
      `expected true or false, got ${describeValue(enabled)}` +
        `${typeof enabled === 'string' ? "; for an environment variable write process.env.X !== 'false'" : ''}.`,
    );
  }
  assertValidMetricsOption(metrics);
  if (localRejectCache !== undefined && typeof localRejectCache !== 'boolean') {
    const size: unknown =
      localRejectCache !== null && typeof localRejectCache === 'object'
        ? (localRejectCache as { maxEntries?: unknown }).maxEntries
        : Number.NaN;
    if (
      size !== undefined &&
      (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 1)
    ) {
      fail(
        'localRejectCache',
        `expected true, false or { maxEntries } with a whole number of at least 1, got ` +
          `${describeValue(localRejectCache)}.`,
      );
    }
  }
}
