import type { ExecutionContext } from '@nestjs/common';
import { METHODS } from 'node:http';
import { closestMatch, describeValue, rejectUnknownKeys } from '../config-validation.js';
import { RateLimitConfigError } from '../rate-limit-config.error.js';
import type { Identity, RateLimitRequest } from '../auth/identity.js';
import { exactArithmeticProblem } from './exact-arithmetic.js';
import {
  RATE_LIMIT_ALGORITHMS,
  RATE_LIMIT_UNITS,
  UNIT_WINDOW_SECONDS,
  type RateLimitAlgorithm,
  type UnitLimit,
} from './rule-units.js';
import { windowMs } from './rule-window.js';

/**
 * How many units one request takes, worked out per request: `(request, identity) => number`,
 * called once per request the rule decides, with the request the auth resolver read (the HTTP
 * request; for a WebSocket or microservice message, what the resolvers get) and the caller. It
 * must return a whole number of at least 1, synchronously. A function that throws or returns
 * anything else never causes a 500: the module logs a warning naming the rule (once, until it
 * returns a good value again) and decides the request by its `failurePolicy`, as if the backend
 * had failed.
 *
 * (Declared through a method so that a function taking your own request type, such as Express's
 * `Request`, is accepted.)
 */
export type CostFunction = {
  cost(request: RateLimitRequest, identity: Readonly<Required<Identity>>): number;
}['cost'];

/**
 * A unit's limit worked out per caller, such as the allowance of the tenant's plan:
 * `(identity, context) => number | Promise<number>`, called once per request the rule decides
 * (before the backend is asked), with the caller and the call's execution context. It must give
 * a whole number, 0 or more (0 denies every request); a number written as a string (`'100'`) is
 * not one. A function that throws, rejects or gives anything else never causes a 500: the module
 * logs a warning naming the rule (once, until it gives a good value again) and decides the
 * request by its `failurePolicy`, as during a backend outage (under `'fallback'`, which has no
 * limit to count against, the request is let through). Cache what it looks up yourself: it runs
 * on every request.
 *
 * (Declared through a method so that a function taking your own identity type is accepted.)
 */
export type UnitLimitFunction = {
  limit(
    identity: Readonly<Required<Identity>>,
    context: ExecutionContext,
  ): number | Promise<number>;
}['limit'];

/** A unit's limit: a number, or a {@link UnitLimitFunction} of the caller. */
export type UnitLimitInput = number | UnitLimitFunction;

/**
 * Which requests a rule counts:
 * - `'all'`: every request it admits (the default);
 * - `'failures'`: only those answered with a status of 400 or more (failed logins);
 * - `'successes'`: only those answered below 400.
 *
 * Every request is counted when it arrives, so that concurrent requests can never together pass
 * the limit, and given back once its response (or the exception it ended with) shows that it
 * does not count.
 */
export type RateLimitCountMode = 'all' | 'failures' | 'successes';

/**
 * Whether a rule rejects: `'enforce'` does; `'shadow'` decides and counts exactly as `'enforce'`
 * would, but lets the request through, reporting the would-be rejection as `'shadow-rejected'`
 * (events, metrics, and the rate-limit headers), to try a new limit on real traffic first.
 */
export type RateLimitMode = 'enforce' | 'shadow';

/**
 * A rule as a plain object. Accepted anywhere a {@link Rule} is: in the pattern table and in
 * `@RateLimit()`.
 *
 * @example
 * { minute: 200, second: 10 }              // both must hold
 * { group: 'admin' }                       // admins are not limited
 * { second: 5, blockTime: 60 }             // over the limit: blocked for a minute everywhere
 * { minute: 100, zone: 'users-api' }       // one counter pool for every rule with this zone
 * { limit: 5, window: '15m' }              // 5 per 15 minutes
 * { minute: 100, algorithm: 'token-bucket', burst: 20 } // 100 a minute on average, 20 at once
 * { hour: 1000, cost: 10 }                 // each request takes 10 of the 1,000
 * { minute: (identity) => plans.limitOf(identity.user) } // the caller's plan decides
 * { minute: 5, count: 'failures' }          // 5 failed logins a minute
 * { minute: 50, mode: 'shadow' }            // report, do not reject yet
 */
export interface RuleInput {
  /** Requests allowed per second, or a {@link UnitLimitFunction} of the caller. */
  second?: UnitLimitInput;
  /** Requests allowed per minute (60 s), or a {@link UnitLimitFunction} of the caller. */
  minute?: UnitLimitInput;
  /** Requests allowed per hour (3,600 s), or a {@link UnitLimitFunction} of the caller. */
  hour?: UnitLimitInput;
  /** Requests allowed per day (86,400 s), or a {@link UnitLimitFunction} of the caller. */
  day?: UnitLimitInput;
  /** Requests allowed per 31 days (2,678,400 s), or a {@link UnitLimitFunction} of the caller. */
  month?: UnitLimitInput;
  /**
   * Requests allowed per {@link window}, a whole number, 0 or more (0 denies every request).
   * `limit` and `window` come together or not at all; they are one more unit of the rule, called
   * `'window'` in decisions and headers, and must hold together with the named units (AND).
   * May be a {@link UnitLimitFunction} of the caller, as the named units may.
   */
  limit?: UnitLimitInput;
  /**
   * The length of the {@link limit}'s window, for a window no named unit has (5 per 15 minutes):
   * - a number of seconds, in whole milliseconds: `900`, `1.5`, `0.25` (at least `0.001`);
   * - a string of a whole number and one lower-case unit letter, without spaces: `'90s'`,
   *   `'15m'`, `'2h'`, `'7d'` (`s` seconds, `m` minutes, `h` hours, `d` days).
   *
   * Anything else (`'15M'`, `'1.5h'`, `'1h30m'`, `'2w'`, `'90'`) fails when the rule is created.
   * A window as long as a named unit (`window: '1m'`) is still a unit of its own, with its own
   * counter: it does not share `minute`'s.
   */
  window?: number | string;
  /**
   * How this rule's units are counted: `'fixed-window'`, `'sliding-window'`, `'sliding-log'` or
   * `'token-bucket'` (see {@link RateLimitAlgorithm} for the exact definitions). Unset: the
   * backend's `algorithm` option. The module fails at start-up when the backend does not
   * implement the algorithm.
   */
  algorithm?: RateLimitAlgorithm;
  /**
   * Token bucket only: how many requests may come at once, the bucket's size in tokens, a whole
   * number of at least 1; the bucket refills at the unit's limit per window. Unset: the limit.
   *
   * Only on a rule whose algorithm (its own, or the backend's when it sets none) is
   * `'token-bucket'`, checked at start-up, and with exactly one unit: every unit is a bucket of
   * its own, so one burst for several of them would be ambiguous. For a steady rate with a
   * burst, write one unit (`{ minute: 60, burst: 10 }`).
   */
  burst?: number;
  /**
   * How many units one request takes from every unit of the rule: a whole number of at least 1,
   * or a {@link CostFunction} of the request and the caller. A request whose cost does not fit is
   * rejected whole and takes nothing; one that costs more than a unit's limit (or the bucket's
   * burst) is always rejected, with that unit's window as its wait.
   * @default 1
   */
  cost?: number | CostFunction;
  /**
   * The caller group this rule is for, compared exactly with the group the auth resolver returns.
   * @default 'default'
   */
  group?: string;
  /**
   * The HTTP method this rule is for, compared case-insensitively; `'*'` means every method.
   * One of Node's `http.METHODS` (`'GET'`, `'post'`, `'PROPFIND'`...), or `'*'`: anything else
   * fails when the rule is created, with the closest method as a hint (`'GETT'` → `'GET'`).
   * A `'GET'` rule also applies to `HEAD` requests, which the router sends to the `GET` handler.
   * The counter key uses the method as written, so `'*'` shares one counter across methods.
   * @default '*'
   */
  method?: string;
  /**
   * Rules with the same zone share one counter pool, whatever path or handler they sit on.
   * Without a zone, pattern rules count per concrete request path and decorator rules per handler.
   */
  zone?: string;
  /**
   * Seconds the user is blocked, on every rate-limited path, once any unit of this rule is exceeded.
   * `0` or unset: no block.
   */
  blockTime?: number;
  /**
   * Which requests count: all of them, only failures (status 400 or more) or only successes; see
   * {@link RateLimitCountMode}.
   * @default 'all'
   */
  count?: RateLimitCountMode;
  /**
   * `'shadow'` to report instead of reject (see {@link RateLimitMode}). Unset: the module's
   * `mode` option (`'enforce'` by default); the rule's own wins. A shadow rule never starts a
   * block: a block applies to every counter of the user, so it would reject requests of enforced
   * rules, which shadow mode must never do.
   */
  mode?: RateLimitMode;
}

const COUNT_MODES: readonly unknown[] = ['all', 'failures', 'successes'];
const MODES: readonly unknown[] = ['enforce', 'shadow'];

const RULE_FIELDS: ReadonlySet<string> = new Set([
  ...RATE_LIMIT_UNITS,
  'group',
  'method',
  'zone',
  'blockTime',
  'limit',
  'window',
  'algorithm',
  'burst',
  'cost',
  'count',
  'mode',
]);

/** Common misspellings, mostly from the Python original, with the field meant. */
const FIELD_HINTS: Readonly<Record<string, string>> = {
  block_time: 'blockTime',
  blocktime: 'blockTime',
  seconds: 'second',
  minutes: 'minute',
  hours: 'hour',
  days: 'day',
  months: 'month',
  methods: 'method',
  groups: 'group',
  windowMs: 'window',
  windowSeconds: 'window',
  max: 'limit',
  points: 'limit',
  capacity: 'burst',
  bucketSize: 'burst',
  weight: 'cost',
  strategy: 'algorithm',
  countOnly: 'count',
  counting: 'count',
  skipSuccessfulRequests: 'count',
  skipFailedRequests: 'count',
  dryRun: 'mode',
  shadow: 'mode',
};

/** What users write for an algorithm, with the one meant. */
const ALGORITHM_HINTS: Readonly<Record<string, RateLimitAlgorithm>> = {
  gcra: 'token-bucket',
  'token bucket': 'token-bucket',
  'leaky-bucket': 'token-bucket',
  fixed: 'fixed-window',
  'sliding-window-log': 'sliding-log',
  'sliding window log': 'sliding-log',
  'sliding-window-counter': 'sliding-window',
};

/** The "did you mean" of an unknown algorithm, or `'.'`. */
function algorithmHint(algorithm: string): string {
  const key = algorithm.trim().toLowerCase();
  const hint = Object.hasOwn(ALGORITHM_HINTS, key)
    ? ALGORITHM_HINTS[key]
    : closestMatch(key.replace(/[\s_]+/g, '-'), RATE_LIMIT_ALGORITHMS);
  return hint === undefined ? '.' : `; did you mean '${hint}'?`;
}

/** The algorithms' names, for messages: `'fixed-window', 'sliding-window', ...`. */
const ALGORITHM_LIST = RATE_LIMIT_ALGORITHMS.map((name) => `'${name}'`).join(', ');

/**
 * The methods a rule may name: those Node's HTTP parser accepts (`http.METHODS`), since a request
 * with any other method never reaches the application, so a rule for it could never apply.
 * The common ones first, so that a misspelling is matched to them on a tie.
 */
const KNOWN_METHODS: readonly string[] = [
  ...new Set(['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS', ...METHODS]),
];
const KNOWN_METHOD_SET: ReadonlySet<string> = new Set(KNOWN_METHODS);

/** What users write for "every method", with the spelling meant. */
const EVERY_METHOD_HINTS: ReadonlySet<string> = new Set(['ALL', 'ANY', '']);

/** For a number written as a string (`'10'`, from an environment variable): how to write it. */
function numberHint(value: unknown): string {
  if (typeof value !== 'string' || value.trim() === '' || !Number.isFinite(Number(value)))
    return '';
  return `; write it as a number (${Number(value)}), e.g. Number(process.env.LIMIT)`;
}

/** The "did you mean" of an unknown method, or `''`. */
function methodHint(method: string): string {
  const upper = method.trim().toUpperCase();
  if (EVERY_METHOD_HINTS.has(upper)) return `; did you mean '*' (every method)?`;
  const parts = upper.split(/[\s,|]+/);
  if (parts.length > 1 && parts.every((part) => KNOWN_METHOD_SET.has(part))) {
    return `; a rule has one method: write one rule per method, or '*' for every method.`;
  }
  if (KNOWN_METHOD_SET.has(upper)) return `; did you mean '${upper}' (without spaces)?`;
  const closest = closestMatch(upper, KNOWN_METHODS);
  return closest === undefined ? '.' : `; did you mean '${closest}'?`;
}

/**
 * One limit for one group of callers and one HTTP method: up to five named units and one window
 * of any length (all must hold), an optional shared zone, block time, algorithm, burst and cost.
 * Validated on construction, so a bad rule fails when the app starts, never at request time
 * (what depends on the backend, such as whether it implements the algorithm, is checked when the
 * module starts).
 *
 * A rule with no unit set is unlimited: a matching caller is not counted and no block applies.
 */
export class Rule {
  readonly second: UnitLimitInput | undefined;
  readonly minute: UnitLimitInput | undefined;
  readonly hour: UnitLimitInput | undefined;
  readonly day: UnitLimitInput | undefined;
  readonly month: UnitLimitInput | undefined;
  /** The limit of the custom window, as given; undefined when the rule has none. */
  readonly limit: UnitLimitInput | undefined;
  /** The custom window as given (seconds or a string such as `'15m'`); see `limits` for its ms. */
  readonly window: number | string | undefined;
  /** The rule's own algorithm; undefined: the backend's. */
  readonly algorithm: RateLimitAlgorithm | undefined;
  /** The token bucket's size; undefined: the unit's limit. */
  readonly burst: number | undefined;
  /** Units one request takes, or the function that says; undefined: 1. */
  readonly cost: number | CostFunction | undefined;
  /** The caller group this rule is for. */
  readonly group: string;
  /** The HTTP method as written (`'*'` for every method); part of the counter key. */
  readonly method: string;
  /** Shared counter pool, if any. */
  readonly zone: string | undefined;
  /** Block length in seconds once a unit is exceeded; 0 when the rule does not block. */
  readonly blockTime: number;
  /** Which requests count. */
  readonly count: RateLimitCountMode;
  /** The rule's own mode; undefined: the module's. */
  readonly mode: RateLimitMode | undefined;
  /**
   * The units that are set, shortest window first (the custom window after a named unit of the
   * same length). Empty for an unlimited rule. A unit whose limit is a function shows `limit: 0`
   * here; its limit per request is what {@link limitFunctions} gives.
   */
  readonly limits: readonly UnitLimit[];
  /**
   * For a rule with a {@link UnitLimitFunction}: the function of each unit of {@link limits}, in
   * the same order (undefined for a unit with a fixed limit). Undefined when every limit is fixed.
   */
  readonly limitFunctions: readonly (UnitLimitFunction | undefined)[] | undefined;

  /** Upper-cased method for matching; undefined for `'*'`. */
  private readonly methodToMatch: string | undefined;

  /**
   * @param input the rule's fields
   * @param where where the rule comes from, for error messages (e.g. `pattern "/towns", rule 1`)
   * @throws RateLimitConfigError when a field is unknown or has an invalid value
   */
  constructor(input: RuleInput = {}, where?: string) {
    const fail = (field: string, problem: string): never => {
      const origin = where ? ` (${where})` : '';
      throw new RateLimitConfigError(
        'RATE_LIMIT_INVALID_RULE',
        `Invalid rate-limit rule${origin}: ${field} ${problem}`,
      );
    };
    if (input === null || typeof input !== 'object' || Array.isArray(input)) {
      fail(
        'the rule',
        `must be a Rule or a plain object such as { minute: 10 }, got ${describeValue(input)}.`,
      );
    }
    rejectUnknownKeys(input, RULE_FIELDS, FIELD_HINTS, 'a rule field', (field, problem) =>
      fail(`"${field}"`, problem),
    );

    const limits: UnitLimit[] = [];
    const functions = new Map<UnitLimit, UnitLimitFunction>();
    for (const unit of RATE_LIMIT_UNITS) {
      const limit = input[unit];
      if (limit === undefined) continue;
      if (typeof limit === 'function') {
        const dynamic = { unit, limit: 0, windowMs: UNIT_WINDOW_SECONDS[unit] * 1000 };
        functions.set(dynamic, limit);
        limits.push(dynamic);
        continue;
      }
      if (typeof limit !== 'number' || !Number.isSafeInteger(limit) || limit < 0) {
        fail(
          `"${unit}"`,
          `must be a whole number of requests, 0 or more (0 denies every request), got ` +
            `${describeValue(limit)}${numberHint(limit)}.`,
        );
      }
      limits.push({ unit, limit, windowMs: UNIT_WINDOW_SECONDS[unit] * 1000 });
    }

    const { limit, window } = input;
    if (limit !== undefined && window === undefined) {
      fail(
        '"limit"',
        `needs a "window" to count in, such as { limit: ${describeValue(limit)}, window: '15m' }; ` +
          'or use a named unit such as { minute: 10 }.',
      );
    }
    if (window !== undefined && limit === undefined) {
      fail(
        '"window"',
        `needs a "limit", the requests allowed per window, such as { limit: 5, window: ` +
          `${describeValue(window)} }.`,
      );
    }
    if (limit !== undefined) {
      if (
        typeof limit !== 'function' &&
        (typeof limit !== 'number' || !Number.isSafeInteger(limit) || limit < 0)
      ) {
        fail(
          '"limit"',
          `must be a whole number of requests per window, 0 or more (0 denies every request), ` +
            `got ${describeValue(limit)}${numberHint(limit)}.`,
        );
      }
      const length = windowMs(window);
      const ms = length.ok ? length.ms : fail('"window"', length.problem);
      // After the named units as long or shorter: the order stays shortest first.
      const at = limits.findIndex((unit) => unit.windowMs > ms);
      const custom = {
        unit: 'window' as const,
        limit: typeof limit === 'number' ? limit : 0,
        windowMs: ms,
      };
      if (typeof limit === 'function') functions.set(custom, limit);
      limits.splice(at < 0 ? limits.length : at, 0, custom);
    }

    const group = input.group ?? 'default';
    if (typeof group !== 'string' || group.length === 0) {
      fail(
        '"group"',
        `must be a non-empty string, the group your auth resolver returns (such as 'admin'); ` +
          `leave it unset for 'default'. Got ${describeValue(group)}.`,
      );
    }
    const method = input.method ?? '*';
    if (typeof method !== 'string') {
      fail(
        '"method"',
        `must be an HTTP method such as 'GET' or '*' for every method, got ${describeValue(method)}.`,
      );
    }
    if (method !== '*' && !KNOWN_METHOD_SET.has(method.toUpperCase())) {
      fail(
        '"method"',
        `must be an HTTP method such as 'GET' (any case) or '*' for every method, got ` +
          `${describeValue(method)}${methodHint(method)}`,
      );
    }
    const zone = input.zone;
    if (zone !== undefined && (typeof zone !== 'string' || zone.length === 0)) {
      fail(
        '"zone"',
        `must be a non-empty string naming the shared counter pool (such as 'search'); leave ` +
          `it unset to count per path or handler. Got ${describeValue(zone)}.`,
      );
    }
    const blockTime = input.blockTime ?? 0;
    if (typeof blockTime !== 'number' || !Number.isFinite(blockTime) || blockTime < 0) {
      fail(
        '"blockTime"',
        `must be a number of seconds, 0 or more (0: no block), got ${describeValue(blockTime)}` +
          `${numberHint(blockTime)}.`,
      );
    }
    if (blockTime > 0 && limits.length === 0) {
      fail(
        '"blockTime"',
        'has no effect on a rule without a limit (an unlimited rule never blocks); set a unit such as second or minute.',
      );
    }

    const { algorithm, burst, cost } = input;
    const unlimitedField = (field: string): never =>
      fail(
        `"${field}"`,
        'has no effect on a rule without a limit (an unlimited rule is never counted); set a ' +
          'unit such as minute, or a limit and a window.',
      );
    if (algorithm !== undefined) {
      if (typeof algorithm !== 'string' || !RATE_LIMIT_ALGORITHMS.includes(algorithm)) {
        fail(
          '"algorithm"',
          `must be one of ${ALGORITHM_LIST}, got ${describeValue(algorithm)}` +
            `${typeof algorithm === 'string' ? algorithmHint(algorithm) : '.'}`,
        );
      }
      if (limits.length === 0) unlimitedField('algorithm');
    }
    if (burst !== undefined) {
      if (typeof burst !== 'number' || !Number.isSafeInteger(burst) || burst < 1) {
        fail(
          '"burst"',
          `must be a whole number of requests, 1 or more (the token bucket's size), got ` +
            `${describeValue(burst)}${numberHint(burst)}.`,
        );
      }
      if (algorithm !== undefined && algorithm !== 'token-bucket') {
        fail(
          '"burst"',
          `only applies to the 'token-bucket' algorithm (it is the bucket's size), and this rule ` +
            `counts with '${algorithm}': drop burst, or set algorithm: 'token-bucket'.`,
        );
      }
      if (limits.length === 0) unlimitedField('burst');
      if (limits.length > 1) {
        fail(
          '"burst"',
          `is the size of one token bucket, and this rule has ${limits.length} units ` +
            `(${limits.map((unit) => unit.unit).join(', ')}), each a bucket of its own: keep one ` +
            'unit on a rule with burst (such as { minute: 60, burst: 10 }), or drop burst so ' +
            'that each bucket holds its limit.',
        );
      }
    }
    if (cost !== undefined) {
      if (
        typeof cost !== 'function' &&
        (typeof cost !== 'number' || !Number.isSafeInteger(cost) || cost < 1)
      ) {
        fail(
          '"cost"',
          `must be a whole number of at least 1 (the units one request takes), or a function ` +
            `(request, identity) => number, got ${describeValue(cost)}${numberHint(cost)}.`,
        );
      }
      if (limits.length === 0) unlimitedField('cost');
    }
    const count = input.count ?? 'all';
    if (!COUNT_MODES.includes(count)) {
      fail(
        '"count"',
        `must be 'all', 'failures' (only responses with status 400 or more count) or ` +
          `'successes' (only those below 400), got ${describeValue(count)}.`,
      );
    }
    if (count !== 'all' && limits.length === 0) unlimitedField('count');
    const mode = input.mode;
    if (mode !== undefined && !MODES.includes(mode)) {
      fail(
        '"mode"',
        `must be 'enforce' or 'shadow' (decide and count, but never reject), got ` +
          `${describeValue(mode)}.`,
      );
    }
    if (algorithm === 'sliding-window' || algorithm === 'token-bucket' || burst !== undefined) {
      const problem = exactArithmeticProblem(limits, burst, algorithm ?? 'token-bucket');
      if (problem !== undefined) fail(problem.field, problem.problem);
    }

    this.second = input.second;
    this.minute = input.minute;
    this.hour = input.hour;
    this.day = input.day;
    this.month = input.month;
    this.limit = limit;
    this.window = window;
    this.algorithm = algorithm;
    this.burst = burst;
    this.cost = cost;
    this.group = group;
    this.method = method;
    this.zone = zone;
    this.blockTime = blockTime;
    this.count = count;
    this.mode = mode;
    this.limits = Object.freeze(limits.map((unit) => Object.freeze(unit)));
    this.limitFunctions =
      functions.size === 0 ? undefined : Object.freeze(limits.map((unit) => functions.get(unit)));
    this.methodToMatch = method === '*' ? undefined : method.toUpperCase();
    Object.freeze(this);
  }

  /**
   * Returns `input` when it already is a Rule, else validates it into one.
   * @param where where the rule comes from, for error messages
   */
  static from(input: Rule | RuleInput, where?: string): Rule {
    return input instanceof Rule ? input : new Rule(input, where);
  }

  /** True when no unit is set: callers this rule applies to are not limited. */
  get unlimited(): boolean {
    return this.limits.length === 0;
  }

  /**
   * Whether this rule is the one for a caller of `group` making a `method` request. A `GET` rule
   * applies to `HEAD` requests too: the router answers `HEAD` with the `GET` handler (Express and
   * Fastify both do, unless a `HEAD` handler comes first), so a `GET` limit must count them.
   * @param group the caller's group
   * @param method the request method, upper-case (as Node reports it)
   */
  appliesTo(group: string, method: string): boolean {
    if (this.group !== group) return false;
    const wanted = this.methodToMatch;
    return wanted === undefined || wanted === method || (wanted === 'GET' && method === 'HEAD');
  }
}
