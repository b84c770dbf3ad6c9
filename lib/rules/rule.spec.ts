/**
 * The rule fields of issue 14 (`limit` + `window`, `algorithm`, `burst`, `cost`): what each
 * accepts, the units they make, and the message of every refusal.
 */
import { RateLimitConfigError } from '../rate-limit-config.error.js';
import { Rule, type RuleInput } from './rule.js';

/** The message of the error `new Rule(input)` throws, which must be a RateLimitConfigError. */
function refusal(input: RuleInput, where?: string): string {
  try {
    new Rule(input, where);
  } catch (error) {
    expect(error).toBeInstanceOf(RateLimitConfigError);
    expect((error as RateLimitConfigError).code).toBe('RATE_LIMIT_INVALID_RULE');
    return (error as Error).message;
  }
  throw new Error(`new Rule(${JSON.stringify(input)}) was accepted`);
}

const SAFE = Number.MAX_SAFE_INTEGER;

describe('limit + window', () => {
  it.each<[RuleInput['window'], number]>([
    [900, 900_000],
    [1.5, 1_500],
    [0.001, 1],
    [0.3, 300],
    [1.005, 1_005],
    ['90s', 90_000],
    ['15m', 900_000],
    ['2h', 7_200_000],
    ['7d', 604_800_000],
    ['015m', 900_000],
  ])('takes window %p as %d ms', (window, ms) => {
    expect(new Rule({ limit: 5, window }).limits).toEqual([
      { unit: 'window', limit: 5, windowMs: ms },
    ]);
  });

  it('is one more unit, in window order, after a named unit of the same length', () => {
    const rule = new Rule({ second: 2, hour: 100, limit: 5, window: '15m' });
    expect(rule.limits.map(({ unit, windowMs }) => [unit, windowMs])).toEqual([
      ['second', 1_000],
      ['window', 900_000],
      ['hour', 3_600_000],
    ]);
    const same = new Rule({ limit: 3, window: '1m', minute: 10 });
    expect(same.limits.map(({ unit }) => unit)).toEqual(['minute', 'window']);
    expect(new Rule({ limit: 1, window: '1d', month: 9 }).limits.map(({ unit }) => unit)).toEqual([
      'window',
      'month',
    ]);
  });

  it('keeps the fields as written, and a limit of 0 denies every request', () => {
    const rule = new Rule({ limit: 0, window: '90s' });
    expect([rule.limit, rule.window, rule.unlimited]).toEqual([0, '90s', false]);
  });

  it('needs both fields', () => {
    expect(refusal({ limit: 5 }, 'pattern "/x", rule 1')).toBe(
      'Invalid rate-limit rule (pattern "/x", rule 1): "limit" needs a "window" to count in, ' +
        "such as { limit: 5, window: '15m' }; or use a named unit such as { minute: 10 }.",
    );
    expect(refusal({ window: '15m' })).toBe(
      'Invalid rate-limit rule: "window" needs a "limit", the requests allowed per window, such ' +
        'as { limit: 5, window: "15m" }.',
    );
  });

  it.each<[string, number | string]>([
    ['a negative limit', -1],
    ['a fractional limit', 2.5],
  ])('refuses %s', (_name, limit) => {
    expect(refusal({ limit: limit as number, window: 60 })).toMatch(
      new RegExp(
        `"limit" must be a whole number of requests per window, 0 or more \\(0 denies every ` +
          `request\\), got ${String(limit).replace('.', '\\.')}\\.$`,
      ),
    );
  });

  it('says how to write a limit read from an environment variable', () => {
    expect(refusal({ limit: '10' as never, window: 60 })).toMatch(
      /"limit" must be a whole number .*got "10"; write it as a number \(10\), e\.g\. Number\(process\.env\.LIMIT\)\.$/,
    );
  });

  const FORMS =
    'must be a number of seconds (such as 900 or 1.5, in whole milliseconds) or a string such ' +
    "as '90s', '15m', '2h' or '7d', got ";
  it.each<[unknown, string]>([
    [0, '0; a window lasts at least 1 ms (0.001).'],
    [-5, '-5; a window lasts at least 1 ms (0.001).'],
    [0.0004, '0.0004; a window lasts at least 1 ms (0.001).'],
    [Infinity, 'Infinity; a window lasts at least 1 ms (0.001).'],
    [
      1.0005,
      '1.0005: a window is whole milliseconds (at most three decimals of a second), such as 1.001.',
    ],
    [2 ** 53, `${2 ** 53}: too long a window (at most 2^53 - 1 ms).`],
    ['0s', '"0s"; a window lasts at least 1 ms.'],
    ['90', '"90"; write seconds as a number (90) or with their unit (\'90s\').'],
    ['15 m', '"15 m"; did you mean \'15m\'?'],
    ['15min', '"15min"; did you mean \'15m\'?'],
    ['2 hours', '"2 hours"; did you mean \'2h\'?'],
    [
      '15M',
      "\"15M\"; the unit letters are lower case: 'm' is minutes, and a month is written in days ('31d').",
    ],
    ['2w', '"2w"; weeks are not a unit: write \'14d\'.'],
    [
      '500ms',
      '"500ms"; milliseconds are not a unit: write the window as a number of seconds (0.5).',
    ],
    [
      '1.5h',
      "\"1.5h\"; the number of a window string is whole: write a smaller unit ('90m', not '1.5h').",
    ],
    ['1h30m', '"1h30m"; a window string has one number and one unit: write \'90m\' for 1h30m.'],
    ['soon', '"soon".'],
    [null, 'null.'],
    [{ minutes: 15 }, 'an object.'],
  ])('refuses the window %p, with the forms that work', (window, got) => {
    expect(refusal({ limit: 5, window: window as never })).toBe(
      `Invalid rate-limit rule: "window" ${FORMS}${got}`,
    );
  });

  it('is suggested for the spellings of other libraries', () => {
    expect(refusal({ max: 5, windowMs: 60_000 } as never)).toMatch(
      /"max" is not a rule field; did you mean "limit"\?/,
    );
    expect(refusal({ limit: 5, windowMs: 60_000 } as never)).toMatch(
      /"windowMs" is not a rule field; did you mean "window"\?/,
    );
  });
});

describe('algorithm', () => {
  it('takes each algorithm, and leaves it to the backend when unset', () => {
    for (const algorithm of [
      'fixed-window',
      'sliding-window',
      'sliding-log',
      'token-bucket',
    ] as const) {
      expect(new Rule({ minute: 5, algorithm }).algorithm).toBe(algorithm);
    }
    expect(new Rule({ minute: 5 }).algorithm).toBeUndefined();
  });

  const KNOWN =
    "must be one of 'fixed-window', 'sliding-window', 'sliding-log', 'token-bucket', got";
  it.each<[unknown, string]>([
    ['sliding_window', `"sliding_window"; did you mean 'sliding-window'?`],
    ['tokenBucket', `"tokenBucket"; did you mean 'token-bucket'?`],
    ['Fixed Window', `"Fixed Window"; did you mean 'fixed-window'?`],
    ['gcra', `"gcra"; did you mean 'token-bucket'?`],
    ['sliding-window-log', `"sliding-window-log"; did you mean 'sliding-log'?`],
    ['leaky', '"leaky".'],
    [1, '1.'],
  ])('refuses %p, naming the algorithm meant', (algorithm, got) => {
    expect(refusal({ minute: 5, algorithm: algorithm as never })).toBe(
      `Invalid rate-limit rule: "algorithm" ${KNOWN} ${got}`,
    );
  });

  it('is suggested for "strategy"', () => {
    expect(refusal({ minute: 5, strategy: 'token-bucket' } as never)).toMatch(
      /"strategy" is not a rule field; did you mean "algorithm"\?/,
    );
  });
});

describe('burst', () => {
  it('goes with one unit of a token-bucket rule, or of a rule that leaves the algorithm to the backend', () => {
    expect(new Rule({ minute: 60, algorithm: 'token-bucket', burst: 10 }).burst).toBe(10);
    expect(new Rule({ limit: 5, window: '15m', burst: 1 }).burst).toBe(1);
    expect(new Rule({ minute: 60 }).burst).toBeUndefined();
  });

  it.each([0, -1, 1.5, '10'])('refuses %p', (burst) => {
    expect(refusal({ minute: 60, burst: burst as never })).toMatch(
      /"burst" must be a whole number of requests, 1 or more \(the token bucket's size\), got /,
    );
  });

  it('refuses another algorithm, saying what to do', () => {
    expect(refusal({ minute: 60, algorithm: 'sliding-window', burst: 10 })).toBe(
      'Invalid rate-limit rule: "burst" only applies to the \'token-bucket\' algorithm (it is the ' +
        "bucket's size), and this rule counts with 'sliding-window': drop burst, or set " +
        "algorithm: 'token-bucket'.",
    );
  });

  it('refuses a rule of several units, each a bucket of its own', () => {
    expect(refusal({ second: 5, hour: 100, algorithm: 'token-bucket', burst: 10 })).toBe(
      'Invalid rate-limit rule: "burst" is the size of one token bucket, and this rule has 2 ' +
        'units (second, hour), each a bucket of its own: keep one unit on a rule with burst ' +
        '(such as { minute: 60, burst: 10 }), or drop burst so that each bucket holds its limit.',
    );
  });
});

describe('cost', () => {
  it('takes a whole number of at least 1 or a function, and is unset by default', () => {
    const perRequest = (): number => 3;
    expect(new Rule({ minute: 60, cost: 10 }).cost).toBe(10);
    expect(new Rule({ minute: 60, cost: perRequest }).cost).toBe(perRequest);
    expect(new Rule({ minute: 60 }).cost).toBeUndefined();
  });

  it.each([0, -2, 2.5, NaN, 'heavy'])('refuses %p', (cost) => {
    expect(refusal({ minute: 60, cost: cost as never })).toMatch(
      /^Invalid rate-limit rule: "cost" must be a whole number of at least 1 \(the units one request takes\), or a function \(request, identity\) => number, got /,
    );
  });

  it('is suggested for "weight"', () => {
    expect(refusal({ minute: 60, weight: 2 } as never)).toMatch(/did you mean "cost"\?/);
  });
});

describe('on a rule without a limit', () => {
  it.each<[string, RuleInput]>([
    ['algorithm', { group: 'admin', algorithm: 'token-bucket' }],
    ['burst', { group: 'admin', burst: 5 }],
    ['cost', { group: 'admin', cost: 2 }],
  ])('%s is refused, as it has no effect', (field, input) => {
    expect(refusal(input)).toBe(
      `Invalid rate-limit rule: "${field}" has no effect on a rule without a limit (an ` +
        'unlimited rule is never counted); set a unit such as minute, or a limit and a window.',
    );
  });
});

describe('exact arithmetic of the sliding window and the token bucket', () => {
  const monthMs = 2_678_400_000;
  const most = Math.floor(SAFE / 4 / monthMs);

  it('takes the largest limit whose product with the window is safe four times over', () => {
    expect(new Rule({ month: most, algorithm: 'sliding-window' }).month).toBe(most);
    expect(new Rule({ month: most + 1, algorithm: 'fixed-window' }).month).toBe(most + 1);
    expect(new Rule({ month: SAFE, algorithm: 'sliding-log' }).month).toBe(SAFE);
    // Left to the backend: checked at start-up, against the backend's algorithm.
    expect(new Rule({ month: most + 1 }).month).toBe(most + 1);
  });

  it('refuses a limit × window above a quarter of Number.MAX_SAFE_INTEGER', () => {
    expect(refusal({ month: most + 1, algorithm: 'token-bucket' })).toBe(
      `Invalid rate-limit rule: "month" is too large for 'token-bucket': the limit ${most + 1} ` +
        `times the window (${monthMs} ms), four times over, is above Number.MAX_SAFE_INTEGER, ` +
        'beyond which it ' +
        `cannot count exactly. Use at most ${most} for this window, a shorter window, or ` +
        "'fixed-window' or 'sliding-log', which take any limit.",
    );
    // 4 × 1 × 2,251,799,813,685,000 fits below 2^53 − 1; 4 × 2 × it does not.
    expect(refusal({ limit: 2, window: 2_251_799_813_685, algorithm: 'sliding-window' })).toMatch(
      /^Invalid rate-limit rule: "limit" is too large for 'sliding-window': the limit 2 times the window \(2251799813685000 ms\), four times over, .* Use at most 1 for this window/,
    );
  });

  it('refuses a burst × window above it', () => {
    expect(refusal({ limit: 1, window: '30d', burst: 4_000_000 })).toMatch(
      /^Invalid rate-limit rule: "burst" is too large for 'token-bucket': the burst 4000000 times the window \(2592000000 ms\), four times over, .* Use at most 868749 for this window/,
    );
  });
});
