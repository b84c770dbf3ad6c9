import { RateLimitConfigError } from '../rate-limit-config.error.js';
import { describeValue } from '../config-validation.js';
import { assertSafePattern } from './pattern-safety.js';
import { Rule, type RuleInput } from './rule.js';
import { TrustedPattern } from './trusted-pattern.js';

/** A list of rules, tried in order; the first one for the caller's group and method is used. */
export type RuleList = readonly (Rule | RuleInput)[];

/**
 * A key of a `Map` or array table: a regular-expression source, a `RegExp`, or either of them
 * marked with {@link trustPattern} to skip the start-up ReDoS check.
 */
export type PatternKey = string | RegExp | TrustedPattern;

/**
 * The ordered pattern table. Patterns are tried in order; the first that matches the path (and has
 * a rule for the caller) decides.
 *
 * - an object `{ '^/towns': [...], '/forests': [...] }`: JavaScript keeps string keys in insertion
 *   order, except keys that look like integers, which come first; use a Map or an array when a
 *   pattern could be such a key;
 * - a `Map` or an array of `[pattern, rules]` pairs, whose keys may also be
 *   `trustPattern(pattern)`.
 *
 * A string pattern is a regular-expression source matched from the start of the path only (like
 * Python's `re.match`: `/towns` matches `/towns/1` but not `/x/towns`); Python's named groups
 * `(?P<name>...)` are accepted. A `RegExp` is used as given (its `g` flag is dropped, because a
 * global regex remembers where it last matched).
 *
 * Every pattern is checked at start-up for catastrophic backtracking (ReDoS) on a crafted path, as
 * compiled and ignoring case; one the check finds unsafe, or cannot decide, stops the start-up
 * unless its key is `trustPattern(pattern)`.
 */
export type RuleTableInput =
  | Readonly<Record<string, RuleList>>
  | ReadonlyMap<PatternKey, RuleList>
  | ReadonlyArray<readonly [PatternKey, RuleList]>;

/** One compiled row of the table. */
export interface PatternRules {
  /** The pattern as the user wrote it, for messages. */
  readonly source: string;
  /** The compiled, start-anchored pattern. */
  readonly pattern: RegExp;
  readonly rules: readonly Rule[];
}

/**
 * The compiled pattern table: validated once at start-up, then only matched.
 */
export class RuleTable {
  private constructor(readonly entries: readonly PatternRules[]) {}

  /** An empty table: only decorators limit anything. */
  static readonly EMPTY = new RuleTable([]);

  /**
   * Validates and compiles a table.
   * @throws RateLimitConfigError naming the pattern and the field for any invalid entry
   */
  static compile(input: RuleTableInput | undefined): RuleTable {
    if (input === undefined) return RuleTable.EMPTY;
    const rows = tableRows(input);
    return new RuleTable(Object.freeze(rows.map(([pattern, rules]) => compileRow(pattern, rules))));
  }

  /** True when the table has no pattern. */
  get isEmpty(): boolean {
    return this.entries.length === 0;
  }

  /**
   * The rows whose pattern matches `path`, or `alternative` when given (another spelling of the
   * same request that a pattern may have been written for), in table order.
   */
  matching(path: string, alternative: string = path): PatternRules[] {
    const found: PatternRules[] = [];
    for (const entry of this.entries) {
      const { pattern } = entry;
      pattern.lastIndex = 0;
      if (pattern.test(path) || (alternative !== path && pattern.test(alternative))) {
        found.push(entry);
      }
    }
    return found;
  }

  /**
   * The same table matching without regard to letter case, for a router that ignores case
   * (Express's default): `^/Towns` then matches the path `/towns`, as the router sends both
   * spellings to one handler. Patterns are checked for catastrophic backtracking with the `i`
   * flag too, when the table is compiled.
   */
  ignoringCase(): RuleTable {
    if (this.entries.every((entry) => entry.pattern.ignoreCase)) return this;
    return new RuleTable(
      Object.freeze(
        this.entries.map((entry) =>
          Object.freeze({
            ...entry,
            pattern: entry.pattern.ignoreCase
              ? entry.pattern
              : new RegExp(entry.pattern.source, `${entry.pattern.flags}i`),
          }),
        ),
      ),
    );
  }
}

function tableRows(input: RuleTableInput): (readonly [PatternKey, RuleList])[] {
  if (input instanceof Map) return [...input.entries()];
  if (Array.isArray(input)) {
    return input.map((row: unknown, index) => {
      if (!Array.isArray(row) || row.length !== 2) {
        throw new RateLimitConfigError(
          'RATE_LIMIT_INVALID_TABLE',
          `Invalid rate-limit config: entry ${index} must be a [pattern, rules] pair, got ${describeValue(row)}.`,
        );
      }
      return row as unknown as readonly [PatternKey, RuleList];
    });
  }
  if (input === null || typeof input !== 'object') {
    throw new RateLimitConfigError(
      'RATE_LIMIT_INVALID_TABLE',
      `Invalid rate-limit config: expected an object, a Map or an array of [pattern, rules] pairs, got ${describeValue(input)}.`,
    );
  }
  return Object.entries(input as Record<string, RuleList>);
}

function compileRow(key: PatternKey, rules: RuleList): PatternRules {
  const trusted = key instanceof TrustedPattern;
  const pattern = trusted ? key.pattern : key;
  const source = pattern instanceof RegExp ? String(pattern) : pattern;
  const compiled = trusted ? toRegExp(pattern) : compilePattern(pattern);
  if (!Array.isArray(rules)) {
    throw new RateLimitConfigError(
      'RATE_LIMIT_INVALID_TABLE',
      `Invalid rate-limit config for pattern ${JSON.stringify(source)}: the rules must be an array such as [{ minute: 10 }], got ${describeValue(rules)}.`,
    );
  }
  const compiledRules = rules.map((rule, index) =>
    Rule.from(rule, `pattern ${JSON.stringify(source)}, rule ${index + 1}`),
  );
  return Object.freeze({ source, pattern: compiled, rules: Object.freeze(compiledRules) });
}

/**
 * Turns a table key into a start-anchored RegExp, rejecting invalid sources and patterns whose
 * matching could backtrack catastrophically on a crafted path (a request path is
 * attacker-controlled), as compiled or ignoring case.
 */
export function compilePattern(pattern: string | RegExp): RegExp {
  const compiled = toRegExp(pattern);
  assertSafePattern(
    compiled,
    pattern instanceof RegExp ? String(pattern) : JSON.stringify(pattern),
  );
  return compiled;
}

/** A table key as the RegExp it is matched with, without the ReDoS check. */
export function toRegExp(pattern: string | RegExp): RegExp {
  if (pattern instanceof RegExp) {
    return pattern.global ? new RegExp(pattern.source, pattern.flags.replace('g', '')) : pattern;
  }
  if (typeof pattern !== 'string' || pattern.length === 0) {
    throw new RateLimitConfigError(
      'RATE_LIMIT_INVALID_PATTERN',
      `Invalid rate-limit pattern ${describeValue(pattern)}: use a non-empty regular-expression source such as '^/api' or a RegExp.`,
    );
  }
  try {
    return new RegExp(`^(?:${fromPythonSyntax(pattern)})`);
  } catch (error) {
    throw new RateLimitConfigError(
      'RATE_LIMIT_INVALID_PATTERN',
      `Invalid rate-limit pattern ${JSON.stringify(pattern)}: ${(error as Error).message}. ` +
        'Patterns are JavaScript regular-expression sources, matched from the start of the path.',
    );
  }
}

/** Python `(?P<name>...)` and `(?P=name)` become JavaScript's `(?<name>...)` and `\k<name>`. */
function fromPythonSyntax(source: string): string {
  return source.replace(/(?<!\\)\(\?P</g, '(?<').replace(/(?<!\\)\(\?P=(\w+)\)/g, '\\k<$1>');
}
