/**
 * The HTTP variants: what each server process runs. Pure data, shared by the driver (which never
 * loads Nest) and the server (which builds the app, in `apps.ts`).
 *
 * @module
 */

/** Every variant the HTTP benchmark knows. */
export const VARIANT_NAMES = [
  'bare',
  'noop-guard',
  'ratelimit-memory',
  'ratelimit-redis',
  'ratelimit-sliding-redis',
  'ratelimit-all-429',
  'ratelimit-redis-all-429',
  'ratelimit-redis-all-429-uncached',
  'throttler-memory',
  'throttler-memory-1s',
  'throttler-all-429',
  'throttler-redis',
  'rlf-memory',
  'rlf-redis',
  'fastify-bare',
  'fastify-noop-guard',
  'fastify-ratelimit-memory',
  'fastify-ratelimit-redis',
  'fastify-throttler-memory',
] as const;

export type VariantName = (typeof VARIANT_NAMES)[number];

/** How a server identifies the caller. */
export type IdentityMode =
  /** Each library's default: the client IP (one busy key, since all traffic is from 127.0.0.1). */
  | 'ip'
  /** The `x-user` request header, through each library's own hook for a custom key. */
  | 'header';

/** The Nest HTTP adapter a server runs on. */
export type HttpPlatformName = 'express' | 'fastify';

export interface VariantInfo {
  readonly name: VariantName;
  /** `@nestjs/platform-express` or `@nestjs/platform-fastify`. */
  readonly platform: HttpPlatformName;
  /** Shown in the tables. */
  readonly label: string;
  /** Needs the benchmark's Redis server. */
  readonly redis: boolean;
  /** The status every measured response must have. */
  readonly expectedStatus: 200 | 429;
  /** What the variant runs, for the notes under the table. */
  readonly description: string;
  /**
   * Requests sent (and not checked) before the first answer is checked against
   * `expectedStatus`: what it takes to put the caller in the state the variant measures.
   */
  readonly primingRequests?: number;
}

/**
 * The limit of every admitting variant: 100,000,000 requests per 60 s window per user, far above
 * what a run can send, so every request is counted and admitted.
 */
export const ADMIT_LIMIT = 100_000_000;
export const WINDOW_SECONDS = 60;

export const VARIANTS: Readonly<Record<VariantName, VariantInfo>> = {
  bare: {
    name: 'bare',
    platform: 'express',
    label: 'bare app',
    redis: false,
    expectedStatus: 200,
    description: 'Nest 12 + Express, one controller, no guard: the baseline of every ratio.',
  },
  'noop-guard': {
    name: 'noop-guard',
    platform: 'express',
    label: 'no-op guard',
    redis: false,
    expectedStatus: 200,
    description: 'A global APP_GUARD whose canActivate() returns true: the cost of any guard.',
  },
  'ratelimit-memory': {
    name: 'ratelimit-memory',
    platform: 'express',
    label: 'nestjs-ratelimit, MemoryBackend',
    redis: false,
    expectedStatus: 200,
    description:
      "RateLimitModule.forRoot({ config: { '^/': [{ minute: 1e8 }] } }) on the default MemoryBackend.",
  },
  'ratelimit-redis': {
    name: 'ratelimit-redis',
    platform: 'express',
    label: 'nestjs-ratelimit, RedisBackend',
    redis: true,
    expectedStatus: 200,
    description: 'The same rule on RedisBackend(redis://…), the backend owning its client.',
  },
  'ratelimit-sliding-redis': {
    name: 'ratelimit-sliding-redis',
    platform: 'express',
    label: 'nestjs-ratelimit, SlidingRedisBackend',
    redis: true,
    expectedStatus: 200,
    description: 'The same rule on SlidingRedisBackend(redis://…), the backend owning its client.',
  },
  'ratelimit-all-429': {
    name: 'ratelimit-all-429',
    platform: 'express',
    label: 'nestjs-ratelimit, all 429 (memory)',
    redis: false,
    expectedStatus: 429,
    description:
      "RateLimitModule.forRoot({ config: { '^/': [{ minute: 0 }] } }): every request is rejected with the default 429.",
  },
  'ratelimit-redis-all-429': {
    name: 'ratelimit-redis-all-429',
    platform: 'express',
    label: 'nestjs-ratelimit, all 429 (RedisBackend)',
    redis: true,
    expectedStatus: 429,
    description:
      'RedisBackend(redis://…) with { minute: 1, blockTime: 86_400 }: a first request is admitted, the next one blocks the caller for a day, and the hot-key shortcut (localRejectCache, on by default) answers every later request locally.',
    primingRequests: 1,
  },
  'ratelimit-redis-all-429-uncached': {
    name: 'ratelimit-redis-all-429-uncached',
    platform: 'express',
    label: 'nestjs-ratelimit, all 429 (RedisBackend, no shortcut)',
    redis: true,
    expectedStatus: 429,
    description:
      'The same blocked caller with localRejectCache: false: every rejection is a Redis script call.',
    primingRequests: 1,
  },
  'throttler-memory': {
    name: 'throttler-memory',
    platform: 'express',
    label: '@nestjs/throttler, memory',
    redis: false,
    expectedStatus: 200,
    description:
      'ThrottlerModule.forRoot([{ ttl: 60_000, limit: 1e8 }]) + ThrottlerGuard as APP_GUARD (its README setup).',
  },
  'throttler-memory-1s': {
    name: 'throttler-memory-1s',
    platform: 'express',
    label: '@nestjs/throttler, memory, 1 s window',
    redis: false,
    expectedStatus: 200,
    description:
      'The same with ttl: 1_000: its in-memory storage keeps one array entry per hit in the window, so the window length matters.',
  },
  'throttler-all-429': {
    name: 'throttler-all-429',
    platform: 'express',
    label: '@nestjs/throttler, all 429 (memory)',
    redis: false,
    expectedStatus: 429,
    description:
      'ThrottlerModule.forRoot([{ ttl: 60_000, limit: 0 }]): every request is rejected with its ThrottlerException (429).',
  },
  'throttler-redis': {
    name: 'throttler-redis',
    platform: 'express',
    label: '@nestjs/throttler + @nest-lab/throttler-storage-redis',
    redis: true,
    expectedStatus: 200,
    description:
      'ThrottlerModule.forRoot({ throttlers: [{ ttl: 60_000, limit: 1e8 }], storage: new ThrottlerStorageRedisService(new Redis(url)) }).',
  },
  'rlf-memory': {
    name: 'rlf-memory',
    platform: 'express',
    label: 'rate-limiter-flexible, RateLimiterMemory',
    redis: false,
    expectedStatus: 200,
    description:
      'new RateLimiterMemory({ points: 1e8, duration: 60 }) in a Nest middleware: consume(req.ip).then(next).catch(429), as its Express middleware recipe.',
  },
  'rlf-redis': {
    name: 'rlf-redis',
    platform: 'express',
    label: 'rate-limiter-flexible, RateLimiterRedis',
    redis: true,
    expectedStatus: 200,
    description:
      'new RateLimiterRedis({ storeClient: new Redis({ enableOfflineQueue: false }), points: 1e8, duration: 60 }) in the same middleware.',
  },
  // The same apps on Fastify: the same controller, identity and limits, on `new FastifyAdapter()`.
  'fastify-bare': {
    name: 'fastify-bare',
    platform: 'fastify',
    label: 'Fastify: bare app',
    redis: false,
    expectedStatus: 200,
    description:
      'Nest 12 + Fastify (new FastifyAdapter()), the same controller, no guard: the baseline of the Fastify ratios.',
  },
  'fastify-noop-guard': {
    name: 'fastify-noop-guard',
    platform: 'fastify',
    label: 'Fastify: no-op guard',
    redis: false,
    expectedStatus: 200,
    description:
      'The no-op APP_GUARD on Fastify: the yardstick of the Fastify targets (server CPU per request).',
  },
  'fastify-ratelimit-memory': {
    name: 'fastify-ratelimit-memory',
    platform: 'fastify',
    label: 'Fastify: nestjs-ratelimit, MemoryBackend',
    redis: false,
    expectedStatus: 200,
    description:
      "The same RateLimitModule.forRoot({ config: { '^/': [{ minute: 1e8 }] } }) on Fastify.",
  },
  'fastify-ratelimit-redis': {
    name: 'fastify-ratelimit-redis',
    platform: 'fastify',
    label: 'Fastify: nestjs-ratelimit, RedisBackend',
    redis: true,
    expectedStatus: 200,
    description: 'The same rule on RedisBackend(redis://…) on Fastify.',
  },
  'fastify-throttler-memory': {
    name: 'fastify-throttler-memory',
    platform: 'fastify',
    label: 'Fastify: @nestjs/throttler, memory',
    redis: false,
    expectedStatus: 200,
    description:
      'The same ThrottlerModule.forRoot([{ ttl: 60_000, limit: 1e8 }]) + ThrottlerGuard on Fastify.',
  },
};

/** The bare app on the same adapter as `variant`: what its throughput ratios divide by. */
export function bareOf(variant: VariantName): VariantName {
  return VARIANTS[variant].platform === 'fastify' ? 'fastify-bare' : 'bare';
}

/** The no-op guard on the same adapter as `variant`: the yardstick of the CPU targets. */
export function noopGuardOf(variant: VariantName): VariantName {
  return VARIANTS[variant].platform === 'fastify' ? 'fastify-noop-guard' : 'noop-guard';
}

/** What the driver passes to a server process (as JSON in argv). */
export interface ServerSpec {
  readonly variant: VariantName;
  readonly identity: IdentityMode;
  /** The benchmark's Redis, for the Redis variants. */
  readonly redisUrl?: string;
  /**
   * Diagnostics: time every `RateLimitGuard.canActivate` call in the server (wall clock, its
   * synchronous part), reported in the samples.
   */
  readonly timeGuard?: boolean;
}

/** Messages from the server process to the driver. */
export type ServerMessage =
  | { readonly type: 'ready'; readonly port: number }
  | { readonly type: 'sample'; readonly id: number; readonly sample: ServerSample }
  | { readonly type: 'error'; readonly message: string };

/** Messages from the driver to the server process. */
export type DriverMessage =
  { readonly type: 'sample'; readonly id: number } | { readonly type: 'stop' };

/** One reading of the server's own resource use. */
export interface ServerSample {
  /** `process.cpuUsage()`: microseconds of user and system CPU since the process started. */
  readonly userUs: number;
  readonly systemUs: number;
  /** `process.memoryUsage().rss`, bytes. */
  readonly rssBytes: number;
  /** `process.resourceUsage().maxRSS`, converted to bytes: the peak RSS so far. */
  readonly maxRssBytes: number;
  readonly heapUsedBytes: number;
  /** With `timeGuard`: total nanoseconds spent in `RateLimitGuard.canActivate`, and its calls. */
  readonly guardNs?: number;
  readonly guardCalls?: number;
}
