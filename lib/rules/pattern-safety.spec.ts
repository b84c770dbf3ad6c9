/**
 * The start-up ReDoS check (redos-detector) against a reference analyser (recheck, which decides
 * by automata theory), on patterns as the table compiles them: start-anchored, and also ignoring
 * case, as they are matched when the router ignores case.
 */
import { check } from 'recheck';
import { RateLimitConfigError } from '../rate-limit-config.error.js';
import { checkPatternSafety } from './pattern-safety.js';
import type { RateLimitModuleOptions } from '../rate-limit.options.js';
import {
  compilePattern,
  RuleTable,
  toRegExp,
  type PatternKey,
  type RuleList,
} from './rule-table.js';
import { trustPattern } from './trusted-pattern.js';

type Verdict = 'safe' | 'exponential' | 'polynomial';

/** Pattern, verdict as compiled, verdict ignoring case; both checkers must give both verdicts. */
const TABLE: [string | RegExp, Verdict, Verdict][] = [
  // Route patterns people write.
  ['^/towns', 'safe', 'safe'],
  ['^/(forests|lakes)', 'safe', 'safe'],
  ['^/auth/login', 'safe', 'safe'],
  ['^/', 'safe', 'safe'],
  ['^/users/[0-9]+(/.*)?$', 'safe', 'safe'],
  ['^/v(\\d+)(\\.\\d+)*$', 'safe', 'safe'],
  ['/users/[^/]+/posts', 'safe', 'safe'],
  ['^/api/(?P<id>\\d+)/items', 'safe', 'safe'],
  ['^/files/.*', 'safe', 'safe'],
  ['^/api/v[12]/orders(/\\d+)?', 'safe', 'safe'],
  ['^/(en|fr|de)/docs/[^/]+$', 'safe', 'safe'],
  ['^/static/[\\w.-]+\\.(js|css)$', 'safe', 'safe'],
  ['^/items/(?P<id>[0-9a-f]{24})$', 'safe', 'safe'],
  ['^/v2/[^/]+/[^/]+/comments', 'safe', 'safe'],
  ['^/docs/.*/edit$', 'safe', 'safe'],
  ['^/(?:orders|invoices|customers|products|carts)/[^/]+(?:/(?:items|notes))?$', 'safe', 'safe'],
  ['^/api/(?P<version>v\\d+)/users/(?P<id>\\d+)$', 'safe', 'safe'],
  ['^/a+$', 'safe', 'safe'],
  [/^\/admin\//i, 'safe', 'safe'],
  [/\/export$/, 'safe', 'safe'],
  // Exponential: a repetition whose body matches the same characters more than one way.
  ['^/(a|aa)+$', 'exponential', 'exponential'],
  ['(x|x)*y', 'exponential', 'exponential'],
  ['/(a+)+$', 'exponential', 'exponential'],
  ['^/(\\w+\\s?)*$', 'exponential', 'exponential'],
  ['^/(?:[^/]+)+/x', 'exponential', 'exponential'],
  ['^/items/(?P<ids>\\d+,?)+$', 'exponential', 'exponential'],
  ['^/(a|A)+$', 'safe', 'exponential'],
  // Polynomial: neighbouring repetitions that split the same characters between them.
  ['^/v2/.+/.+/comments', 'polynomial', 'polynomial'],
  ['^/a/.*/b/.*/c', 'polynomial', 'polynomial'],
  ['^/files/\\w+\\d*\\.pdf', 'polynomial', 'polynomial'],
  ['^/[a-z]*[a-z0-9]*$', 'polynomial', 'polynomial'],
];

/**
 * Patterns the start-up check refuses although the reference finds them safe: the price of a
 * check that is fast and needs no native binary. `trustPattern` is the way out for these.
 */
const REFUSED_THOUGH_SAFE: (string | RegExp)[] = [
  // redos-detector counts the backtracking inside the group against the one after it.
  '^/(?:[a-z0-9]+-)*[a-z0-9]+$',
  // It models an unanchored search with a leading `[^]*?`, which competes with the pattern.
  /\/users\/\d+$/,
  // It counts the alternatives sharing a prefix; more than 200 combinations is "unsafe".
  `^/(?:${Array.from({ length: 20 }, (_, i) => `api/v${i + 1}`).join('|')})/`,
];

function ignoringCase(pattern: RegExp): RegExp {
  return pattern.ignoreCase ? pattern : new RegExp(pattern.source, `${pattern.flags}i`);
}

function runtimeVerdict(pattern: RegExp): string {
  const safety = checkPatternSafety(pattern);
  if (safety.verdict === 'safe') return 'safe';
  return safety.verdict === 'unsafe' ? (safety.kind ?? 'unsafe') : `undecided: ${safety.reason}`;
}

async function referenceVerdict(pattern: RegExp): Promise<string> {
  const diagnostics = await check(pattern.source, pattern.flags, { timeout: 60_000 });
  if (diagnostics.status === 'vulnerable') return diagnostics.complexity.type;
  return diagnostics.status === 'safe' ? 'safe' : `unknown: ${diagnostics.error.kind}`;
}

function codeOf(create: () => unknown): string | undefined {
  try {
    create();
  } catch (error) {
    expect(error).toBeInstanceOf(RateLimitConfigError);
    return (error as RateLimitConfigError).code;
  }
  return undefined;
}

describe('the start-up ReDoS check', () => {
  it('has a table of at least 20 patterns, safe and unsafe of both kinds', () => {
    expect(TABLE.length).toBeGreaterThanOrEqual(20);
    const verdicts = new Set(TABLE.flatMap(([, asCompiled, folded]) => [asCompiled, folded]));
    expect(verdicts).toEqual(new Set(['safe', 'exponential', 'polynomial']));
  });

  it.each(TABLE)(
    '%p is %s as compiled and %s ignoring case, for both checkers',
    async (pattern, asCompiled, folded) => {
      const compiled = toRegExp(pattern);
      const variants = [compiled, ignoringCase(compiled)];
      expect({
        runtime: variants.map(runtimeVerdict),
        reference: await Promise.all(variants.map(referenceVerdict)),
      }).toEqual({ runtime: [asCompiled, folded], reference: [asCompiled, folded] });
      const safe = asCompiled === 'safe' && folded === 'safe';
      expect(codeOf(() => compilePattern(pattern))).toBe(
        safe ? undefined : 'RATE_LIMIT_UNSAFE_PATTERN',
      );
    },
  );

  it.each(REFUSED_THOUGH_SAFE)('refuses %p, which the reference finds safe', async (pattern) => {
    const compiled = toRegExp(pattern);
    expect(await referenceVerdict(compiled)).toBe('safe');
    expect(checkPatternSafety(compiled).verdict).toBe('unsafe');
    expect(RuleTable.compile(new Map([[trustPattern(pattern), [{ minute: 1 }]]])).isEmpty).toBe(
      false,
    );
  });
});

describe('start-up ReDoS check messages', () => {
  function messageOf(create: () => unknown): { code: string; message: string } {
    try {
      create();
    } catch (error) {
      expect(error).toBeInstanceOf(RateLimitConfigError);
      const { code, message } = error as RateLimitConfigError;
      return { code, message };
    }
    throw new Error('expected a RateLimitConfigError');
  }

  const trustHint = (shown: string) =>
    `new Map([[trustPattern(${shown}), rules]]). An object table cannot mark a pattern trusted.`;

  it('names an exponential pattern, its repetition and a rewrite', () => {
    const { code, message } = messageOf(() => compilePattern('^/(a|aa)+$'));
    expect(code).toBe('RATE_LIMIT_UNSAFE_PATTERN');
    expect(message).toContain('Unsafe rate-limit pattern "^/(a|aa)+$": ');
    expect(message).toContain(
      '`(a|aa)+` can match the same characters in more than one way on each repetition, so a ' +
        'crafted request path makes matching take exponential time.',
    );
    expect(message).toContain('`(a|aa)+` → `a+`');
    expect(message).toContain(trustHint('"^/(a|aa)+$"'));
  });

  it('names a polynomial pattern, the repetitions that compete and a rewrite', () => {
    const { code, message } = messageOf(() => compilePattern('^/v2/.+/.+/comments'));
    expect(code).toBe('RATE_LIMIT_UNSAFE_PATTERN');
    expect(message).toContain(
      'Unsafe rate-limit pattern "^/v2/.+/.+/comments": `.+` and `.+` can split the same ' +
        'characters between them in many ways, so a crafted request path makes matching take ' +
        'polynomial time.',
    );
    expect(message).toContain('`.+/.+` → `[^/]+/[^/]+`');
    expect(message).toContain(trustHint('"^/v2/.+/.+/comments"'));
  });

  it('says when a pattern is only unsafe ignoring case', () => {
    const { message } = messageOf(() => compilePattern('^/(a|A)+$'));
    expect(message).toContain(
      'Unsafe rate-limit pattern "^/(a|A)+$" when matched ignoring case: `(a|A)+` can match',
    );
  });

  it('shows a Python named group as written', () => {
    const { message } = messageOf(() => compilePattern('^/items/(?P<ids>\\d+,?)+$'));
    expect(message).toContain('Unsafe rate-limit pattern "^/items/(?P<ids>\\\\d+,?)+$": ');
    expect(message).toContain('exponential time');
  });

  it('shows a RegExp as a literal and says when it has no start anchor', () => {
    const { message } = messageOf(() => compilePattern(/\/users\/\d+$/));
    expect(message).toContain('Unsafe rate-limit pattern /\\/users\\/\\d+$/: ');
    expect(message).toContain(
      'It has no start anchor, so it is tried from every position of the path: begin it with ^',
    );
    expect(message).toContain(trustHint('/\\/users\\/\\d+$/'));
  });

  it('refuses a pattern the check cannot decide, and says why and what to do', () => {
    const { code, message } = messageOf(() =>
      compilePattern(new RegExp('^/[\\p{L}--[a-z]]+', 'v')),
    );
    expect(code).toBe('RATE_LIMIT_UNDECIDED_PATTERN');
    expect(message).toContain(
      'Rate-limit pattern /^\\/[\\p{L}--[a-z]]+/v could not be checked for catastrophic ' +
        'backtracking: the checker does not support the v (unicodeSets) flag. Simplify it',
    );
    expect(message).toContain(trustHint('/^\\/[\\p{L}--[a-z]]+/v'));
  });
});

describe('trustPattern', () => {
  const rules = [{ minute: 1 }];

  it('lets a Map table keep a pattern the check refuses, matched as usual', () => {
    expect(() => RuleTable.compile(new Map([['^/v2/.+/.+/comments', rules]]))).toThrow(
      /Unsafe rate-limit pattern/,
    );
    const table = RuleTable.compile(new Map([[trustPattern('^/v2/.+/.+/comments'), rules]]));
    expect(table.entries[0]!.source).toBe('^/v2/.+/.+/comments');
    expect(table.matching('/v2/a/b/comments')).toHaveLength(1);
    expect(table.matching('/x/v2/a/b/comments')).toHaveLength(0);
  });

  it('mixes trusted and checked keys (the README example, and a Map typed by hand)', () => {
    const slugRules: RateLimitModuleOptions['config'] = [
      // Refused by the check, but each '-' ends a repetition: a path can match only one way.
      [trustPattern('^/(?:[a-z0-9]+-)*[a-z0-9]+$'), [{ minute: 10 }]],
      ['^/', [{ minute: 30 }]],
    ];
    const map = new Map<PatternKey, RuleList>([
      [trustPattern('^/(?:[a-z0-9]+-)*[a-z0-9]+$'), [{ minute: 10 }]],
      ['^/', [{ minute: 30 }]],
    ]);
    for (const input of [slugRules, map]) {
      const table = RuleTable.compile(input);
      expect(table.matching('/my-first-post').map((entry) => entry.source)).toEqual([
        '^/(?:[a-z0-9]+-)*[a-z0-9]+$',
        '^/',
      ]);
    }
    expect(() => RuleTable.compile({ '^/(?:[a-z0-9]+-)*[a-z0-9]+$': [{ minute: 10 }] })).toThrow(
      /An object table cannot mark a pattern trusted/,
    );
  });

  it('works in an array table, for a RegExp too (its g flag dropped)', () => {
    const table = RuleTable.compile([
      [trustPattern(/^\/(a|aa)+$/g), rules],
      ['^/b', rules],
    ]);
    expect(table.entries.map((entry) => entry.source)).toEqual(['/^\\/(a|aa)+$/g', '^/b']);
    expect(table.entries[0]!.pattern.flags).toBe('');
    expect(table.matching('/aa')).toHaveLength(1);
  });

  it('still validates the pattern as a regular expression', () => {
    for (const bad of ['??', '', 42 as never]) {
      expect(codeOf(() => RuleTable.compile(new Map([[trustPattern(bad), rules]])))).toBe(
        'RATE_LIMIT_INVALID_PATTERN',
      );
    }
  });

  it('gives a frozen key', () => {
    expect(Object.isFrozen(trustPattern('^/x'))).toBe(true);
  });
});
