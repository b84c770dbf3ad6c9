import { isSafePattern, type RedosDetectorResult } from 'redos-detector';
import { RateLimitConfigError } from '../rate-limit-config.error.js';
import { ambiguousRepetitions } from './ambiguous-repetitions.js';
import { withoutGroupNames } from './unnamed-groups.js';

/**
 * How far redos-detector may search one pattern. A step budget gives the same verdict on every
 * machine. The route patterns of the tests need at most about 800 steps (an alternation of ten
 * words followed by `[^/]+`), and a pattern the checker cannot bound, such as `(a|aa)+`, costs
 * about a second before it gives up. The time limit only keeps one pathological pattern from
 * holding up the start-up.
 */
const MAX_STEPS = 3_000;
const TIMEOUT_MS = 10_000;

/** What the start-up check found for one compiled pattern, with its flags. */
export type PatternSafety =
  | { readonly verdict: 'safe' }
  | {
      /** Some path can be matched in more ways than the checker accepts. */
      readonly verdict: 'unsafe';
      /** How the matching time can grow with the path's length, when the checker's trails tell. */
      readonly kind: 'exponential' | 'polynomial' | undefined;
      /** The repetitions that can match the same characters in more than one way. */
      readonly culprits: readonly string[];
      /** It has no start anchor, and trying it at every position of the path takes part. */
      readonly searched: boolean;
    }
  | {
      /** The checker could not tell: it gave up, or does not support the syntax. */
      readonly verdict: 'undecided';
      readonly reason: string;
    };

/**
 * Decides whether matching `pattern` can backtrack catastrophically (ReDoS), as redos-detector
 * sees it: a pattern is unsafe when it can match some input in more than 200 ways, or when the
 * checker runs out of budget after it has seen an input matched two ways. An unanchored pattern
 * is checked as it is searched, from every start position.
 */
export function checkPatternSafety(pattern: RegExp): PatternSafety {
  if (pattern.flags.includes('v')) {
    return {
      verdict: 'undecided',
      reason: 'the checker does not support the v (unicodeSets) flag',
    };
  }
  let result: RedosDetectorResult;
  try {
    result = isSafePattern(withoutGroupNames(pattern), {
      caseInsensitive: pattern.ignoreCase,
      dotAll: pattern.dotAll,
      multiLine: pattern.multiline,
      unicode: pattern.unicode,
      maxSteps: MAX_STEPS,
      timeout: TIMEOUT_MS,
    });
  } catch (error) {
    return { verdict: 'undecided', reason: `the checker cannot parse it (${firstLine(error)})` };
  }
  if (result.safe) return { verdict: 'safe' };
  const { kind, sources, searched } = ambiguousRepetitions(result);
  // A trail is a witness: one input, two ways through the pattern. Running out of budget without
  // one says nothing about the pattern.
  if (result.error === 'hitMaxScore' || sources.length > 0) {
    return { verdict: 'unsafe', kind, culprits: sources, searched };
  }
  return {
    verdict: 'undecided',
    reason:
      result.error === 'hitMaxSteps'
        ? `the checker gave up after ${MAX_STEPS.toLocaleString('en')} steps`
        : `the checker gave up after ${TIMEOUT_MS / 1000} s`,
  };
}

/**
 * Refuses a table pattern whose matching could backtrack catastrophically on a crafted request
 * path, or that the checker cannot decide. The pattern is checked as compiled and again ignoring
 * case, because it is matched that way when the router ignores case, and case folding can make a
 * safe pattern unsafe (`^/(a|A)+$`).
 * @param shown the pattern as the user wrote it, for the message
 * @throws RateLimitConfigError `RATE_LIMIT_UNSAFE_PATTERN` or `RATE_LIMIT_UNDECIDED_PATTERN`
 */
export function assertSafePattern(pattern: RegExp, shown: string): void {
  const variants: [RegExp, string][] = [[pattern, '']];
  if (!pattern.ignoreCase) {
    variants.push([new RegExp(pattern.source, `${pattern.flags}i`), ' when matched ignoring case']);
  }
  for (const [variant, when] of variants) {
    const safety = checkPatternSafety(variant);
    if (safety.verdict === 'unsafe') {
      throw new RateLimitConfigError(
        'RATE_LIMIT_UNSAFE_PATTERN',
        `Unsafe rate-limit pattern ${shown}${when}: ${whatIsWrong(safety)}. ` +
          (safety.searched
            ? 'It has no start anchor, so it is tried from every position of the path: begin it ' +
              'with ^ if it is meant to match from the start. '
            : '') +
          'Rewrite it so that each character of a path can be matched only one way, e.g. ' +
          '`(a|aa)+` → `a+`, `(a+)+` → `a+`, `.+/.+` → `[^/]+/[^/]+`. ' +
          trustAdvice(shown),
      );
    }
    if (safety.verdict === 'undecided') {
      throw new RateLimitConfigError(
        'RATE_LIMIT_UNDECIDED_PATTERN',
        `Rate-limit pattern ${shown} could not be checked for catastrophic backtracking${when}: ` +
          `${safety.reason}. Simplify it (fewer nested or adjacent repetitions, \`[^/]+\` for a ` +
          `path segment) or split it into several patterns. ${trustAdvice(shown)}`,
      );
    }
  }
}

function whatIsWrong({ kind, culprits }: Extract<PatternSafety, { verdict: 'unsafe' }>): string {
  const quoted = culprits.map((culprit) => `\`${culprit}\``);
  const list = `${quoted.slice(0, -1).join(', ')} and ${quoted.at(-1)}`;
  if (kind === 'exponential') {
    return (
      `${quoted.length === 1 ? quoted[0] : list} can match the same characters in more than one ` +
      'way on each repetition, so a crafted request path makes matching take exponential time'
    );
  }
  if (kind === 'polynomial') {
    return (
      `${list} can split the same characters between them in many ways, so a crafted request ` +
      'path makes matching take polynomial time'
    );
  }
  return (
    `some path can be matched in more than 200 ways${quoted.length > 0 ? ` (through ${quoted.join(', ')})` : ''}, ` +
    'so a crafted request path can make matching take exponential or polynomial time'
  );
}

function trustAdvice(shown: string): string {
  return (
    'If you have checked that it cannot backtrack catastrophically, mark it trusted with ' +
    `trustPattern() as the key of a Map or array table: new Map([[trustPattern(${shown}), ` +
    'rules]]). An object table cannot mark a pattern trusted.'
  );
}

function firstLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split('\n')[0]!;
}
