import { METHODS } from 'node:http';
import { closestMatch, describeValue, rejectUnknownKeys } from '../config-validation.js';
import { RateLimitConfigError } from '../rate-limit-config.error.js';
import { RATE_LIMIT_UNITS, UNIT_WINDOW_SECONDS, type UnitLimit } from './rule-units.js';

/**
 * A rule as a plain object. Accepted anywhere a {@link Rule} is: in the pattern table and in
 * `@RateLimit()`.
 *
 * @example
 * { minute: 200, second: 10 }              // both must hold
 * { group: 'admin' }                       // admins are not limited
 * { second: 5, blockTime: 60 }             // over the limit: blocked for a minute everywhere
 * { minute: 100, zone: 'users-api' }       // one counter pool for every rule with this zone
 */
export interface RuleInput {
  /** Requests allowed per second. */
  second?: number;
  /** Requests allowed per minute (60 s). */
  minute?: number;
  /** Requests allowed per hour (3,600 s). */
  hour?: number;
  /** Requests allowed per day (86,400 s). */
  day?: number;
  /** Requests allowed per 31 days (2,678,400 s). */
  month?: number;
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
}

const RULE_FIELDS: ReadonlySet<string> = new Set([
  ...RATE_LIMIT_UNITS,
  'group',
  'method',
  'zone',
  'blockTime',
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
};

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
 * One limit for one group of callers and one HTTP method: up to five units (all must hold), an
 * optional shared zone and an optional block time. Validated on construction, so a bad rule fails
 * when the app starts, never at request time.
 *
 * A rule with no unit set is unlimited: a matching caller is not counted and no block applies.
 */
export class Rule {
  readonly second: number | undefined;
  readonly minute: number | undefined;
  readonly hour: number | undefined;
  readonly day: number | undefined;
  readonly month: number | undefined;
  /** The caller group this rule is for. */
  readonly group: string;
  /** The HTTP method as written (`'*'` for every method); part of the counter key. */
  readonly method: string;
  /** Shared counter pool, if any. */
  readonly zone: string | undefined;
  /** Block length in seconds once a unit is exceeded; 0 when the rule does not block. */
  readonly blockTime: number;
  /** The units that are set, shortest window first. Empty for an unlimited rule. */
  readonly limits: readonly UnitLimit[];

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
    for (const unit of RATE_LIMIT_UNITS) {
      const limit = input[unit];
      if (limit === undefined) continue;
      if (typeof limit !== 'number' || !Number.isSafeInteger(limit) || limit < 0) {
        fail(
          `"${unit}"`,
          `must be a whole number of requests, 0 or more (0 denies every request), got ` +
            `${describeValue(limit)}${numberHint(limit)}.`,
        );
      }
      limits.push({ unit, limit, windowMs: UNIT_WINDOW_SECONDS[unit] * 1000 });
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

    this.second = input.second;
    this.minute = input.minute;
    this.hour = input.hour;
    this.day = input.day;
    this.month = input.month;
    this.group = group;
    this.method = method;
    this.zone = zone;
    this.blockTime = blockTime;
    this.limits = Object.freeze(limits);
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
