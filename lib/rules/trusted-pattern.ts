/**
 * A pattern-table key that skips the start-up ReDoS check; made by {@link trustPattern}.
 */
export class TrustedPattern {
  /** @internal Use {@link trustPattern}. */
  constructor(
    /** The pattern, as it would be written without `trustPattern`. */
    readonly pattern: string | RegExp,
  ) {
    Object.freeze(this);
  }
}

/**
 * Marks a pattern-table key as checked by you: the table skips its start-up check for
 * catastrophic backtracking (ReDoS), and still compiles and validates it as a regular expression.
 * Use it as the key of a `Map` or array table; an object table's keys can only be strings.
 *
 * Only trust a pattern you have checked: a request path is chosen by the caller, and a pattern
 * that backtracks catastrophically blocks the event loop for every request.
 * @example
 * new Map([[trustPattern('^/v(\\d+)(\\.\\d+)*$'), [{ minute: 60 }]]])
 */
export function trustPattern(pattern: string | RegExp): TrustedPattern {
  return new TrustedPattern(pattern);
}
