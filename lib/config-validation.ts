import { RateLimitConfigError } from './rate-limit-config.error.js';

/** Reports one invalid option of `owner`; never returns. */
export type FailOption = (option: string, problem: string) => never;

/**
 * The `fail` function of one configurable thing: throws a `RateLimitConfigError`
 * (`RATE_LIMIT_INVALID_OPTION`) that names the owner and the option, e.g.
 * `Invalid JwtAuthResolver option "algorithms": ...`.
 */
export function optionFailure(owner: string): FailOption {
  return (option, problem) => {
    throw new RateLimitConfigError(
      'RATE_LIMIT_INVALID_OPTION',
      `Invalid ${owner} option "${option}": ${problem}`,
    );
  };
}

/**
 * Rejects keys of `input` that are not in `known`, suggesting the key meant when `hints` knows a
 * common misspelling (`block_time` → `blockTime`). Plain JavaScript callers and `as` casts can
 * pass anything, and a silently ignored option is the hardest misconfiguration to find.
 * @param what how to name the set of keys, e.g. `a JwtAuthResolver option`, `a rule field`
 */
export function rejectUnknownKeys(
  input: object,
  known: ReadonlySet<string>,
  hints: Readonly<Record<string, string>>,
  what: string,
  fail: FailOption,
): void {
  for (const key of Object.keys(input)) {
    if (known.has(key)) continue;
    const hint = Object.hasOwn(hints, key) ? hints[key] : undefined;
    fail(
      key,
      `is not ${what}${hint ? `; did you mean "${hint}"?` : '.'} Known: ${[...known].join(', ')}.`,
    );
  }
}

/** A short, safe rendering of a bad value for error messages (never a whole object or secret). */
export function describeValue(value: unknown): string {
  if (typeof value === 'string') {
    return JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}…` : value);
  }
  if (value === null || value === undefined) return String(value);
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') {
    return String(value);
  }
  if (Array.isArray(value)) return 'an array';
  return `a ${typeof value}`;
}
