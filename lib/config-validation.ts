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
 * Rejects keys of `input` that are not in `known`, suggesting the key meant: the one `hints` names
 * for a common misspelling (`block_time` → `blockTime`), else the closest known key by spelling
 * (`secnd` → `second`). Plain JavaScript callers and `as` casts can pass anything, and a silently
 * ignored option is the hardest misconfiguration to find.
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
    const hint = Object.hasOwn(hints, key) ? hints[key] : closestMatch(key, [...known]);
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
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

/** Longest input {@link closestMatch} compares: longer ones are no misspelling of a short name. */
const MAX_SUGGESTION_INPUT = 40;

/**
 * The candidate closest to `input`, for a "did you mean" hint: the fewest edits (a character
 * inserted, deleted or replaced, or two neighbours swapped), ignoring case. `undefined` when no
 * candidate is within 1 edit (2 for inputs of 7 characters or more), since a far-fetched hint
 * misleads more than none (`'FETCH'` is no misspelling of `'PATCH'`). Ties go to the earlier
 * candidate, so list the common names first.
 */
export function closestMatch(input: string, candidates: readonly string[]): string | undefined {
  if (input.length === 0 || input.length > MAX_SUGGESTION_INPUT) return undefined;
  const wanted = input.toLowerCase();
  let best: string | undefined;
  let bestDistance = input.length >= 7 ? 3 : 2;
  for (const candidate of candidates) {
    const distance = editDistance(wanted, candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

/** Optimal-string-alignment distance: Levenshtein plus swaps of neighbouring characters. */
function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 2) return Infinity; // never close enough to matter
  const rows: number[][] = [];
  for (let i = 0; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      if (i === 0) {
        row.push(j);
        continue;
      }
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let distance = Math.min(rows[i - 1]![j]! + 1, row[j - 1]! + 1, rows[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        distance = Math.min(distance, rows[i - 2]![j - 2]! + 1);
      }
      row.push(distance);
    }
    rows.push(row);
  }
  return rows[a.length]![b.length]!;
}
