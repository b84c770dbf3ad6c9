import { RateLimitConfigError } from '../rate-limit-config.error.js';
import { Rule } from '../rules/rule.js';
import { counterKey } from './counter-key.js';
import { MemoryBackend, type MemoryBackendOptions } from './memory.backend.js';
import type { UnitLimit } from '../rules/rule-units.js';
import type { ConsumeQuery, ConsumeResult, UnitState } from './rate-limit.backend.js';
import { counter, HOUR, MINUTE, query, SECOND, unit } from '../../test/support/units.js';

describe('counterKey', () => {
  it('never gives two different counters the same key', () => {
    const parts = [
      '',
      ':',
      '::',
      '1:',
      '11:',
      '1',
      'a',
      'a:',
      ':a',
      '{x}',
      '}{',
      '\n',
      '*',
      'é',
      'x'.repeat(1000),
    ];
    const keys = new Set<string>();
    for (const scope of parts) {
      for (const method of parts) {
        for (const user of parts) keys.add(counterKey({ scope, method, user }));
      }
    }
    expect(keys.size).toBe(parts.length ** 3);
  });

  it('separates counters that naive concatenation would merge', () => {
    const a = { scope: 'zone:a:b', method: 'c', user: 'd' };
    const b = { scope: 'zone:a', method: 'b:c', user: 'd' };
    expect(`${a.scope}:${a.method}:${a.user}`).toBe(`${b.scope}:${b.method}:${b.user}`);
    expect(counterKey(a)).not.toBe(counterKey(b));
  });
});

describe('MemoryBackend', () => {
  let now: number;
  let backend: MemoryBackend;

  const make = (options: MemoryBackendOptions = {}): MemoryBackend =>
    new MemoryBackend({ clock: () => now, sweepIntervalMs: 0, ...options });

  /** Consumes synchronously; fails the test if the backend returned a Promise. */
  const consume = (q: ConsumeQuery, on: MemoryBackend = backend): ConsumeResult => {
    const result = on.consume(q);
    expect(result).not.toBeInstanceOf(Promise);
    return result;
  };

  beforeEach(() => {
    now = 0;
    backend = make();
  });

  afterEach(() => backend.close());

  it('admits up to the limit, then rejects without counting', () => {
    const q = query([unit('minute', 3)]);
    for (let i = 0; i < 3; i++) expect(consume(q).allowed).toBe(true);
    now = 10 * SECOND;
    expect(consume(q)).toEqual({
      allowed: false,
      retryAfterMs: 50 * SECOND,
      blocked: false,
      unit: 'minute',
      units: [{ unit: 'minute', limit: 3, windowMs: MINUTE, remaining: 0, resetMs: 50 * SECOND }],
    });
  });

  it('counts nothing for a rejected request (test_multiple: second=1, minute=3)', () => {
    const q = query(new Rule({ second: 1, minute: 3 }).limits);
    const admitted: boolean[] = [];
    admitted.push(consume(q).allowed); // t=0: allowed
    const rejected = consume(q); // t=0: the second is used up
    expect(rejected).toMatchObject({ allowed: false, unit: 'second', retryAfterMs: SECOND });
    admitted.push(rejected.allowed);
    now = 1 * SECOND;
    admitted.push(consume(q).allowed); // allowed: the rejected one did not count in the minute
    admitted.push(consume(q).allowed); // rejected
    now = 3 * SECOND;
    admitted.push(consume(q).allowed); // allowed: third of the minute
    expect(admitted).toEqual([true, false, true, false, true]);
    now = 4 * SECOND;
    expect(consume(q)).toMatchObject({ allowed: false, unit: 'minute', retryAfterMs: 56 * SECOND });
  });

  it('gives no free request at the end of a window', () => {
    const perSecond = query([unit('second', 1)]);
    expect(consume(perSecond).allowed).toBe(true);
    now = 999;
    expect(consume(perSecond)).toMatchObject({ allowed: false, retryAfterMs: 1 });
    now = 1000;
    expect(consume(perSecond).allowed).toBe(true);

    const perMinute = query([unit('minute', 1)], counter('bob'));
    now = 0;
    expect(consume(perMinute).allowed).toBe(true);
    now = MINUTE - 1;
    expect(consume(perMinute)).toMatchObject({ allowed: false, retryAfterMs: 1 });
    now = MINUTE;
    expect(consume(perMinute).allowed).toBe(true);
  });

  it('counts retryAfterMs down as time passes', () => {
    const q = query([unit('minute', 1)]);
    consume(q);
    expect(consume(q).retryAfterMs).toBe(60_000);
    now = 2 * SECOND;
    expect(consume(q).retryAfterMs).toBe(58_000);
  });

  it('reports the longest wait among the exhausted units', () => {
    const both = query([unit('second', 1), unit('minute', 1)]);
    consume(both);
    now = 500;
    expect(consume(both)).toMatchObject({ allowed: false, unit: 'minute', retryAfterMs: 59_500 });

    const onlySecond = query([unit('second', 1), unit('minute', 5)], counter('bob'));
    now = 1000;
    consume(onlySecond);
    now = 1200;
    expect(consume(onlySecond)).toMatchObject({
      allowed: false,
      unit: 'second',
      retryAfterMs: 800,
    });
  });

  it('always rejects a limit of 0, with the unit window as the wait', () => {
    const q = query([unit('second', 5), unit('hour', 0)]);
    for (const t of [0, 10 * SECOND, 5 * 3_600_000]) {
      now = t;
      expect(consume(q)).toEqual({
        allowed: false,
        retryAfterMs: 3_600_000,
        blocked: false,
        unit: 'hour',
        units: [
          { unit: 'second', limit: 5, windowMs: SECOND, remaining: 5, resetMs: SECOND },
          { unit: 'hour', limit: 0, windowMs: 3_600_000, remaining: 0, resetMs: 3_600_000 },
        ],
      });
    }
    expect(backend.size).toBe(0);
  });

  it('reports remaining and resetMs for every unit, in query order', () => {
    const q = query([unit('second', 2), unit('minute', 10)]);
    expect(consume(q).units).toEqual([
      { unit: 'second', limit: 2, windowMs: SECOND, remaining: 1, resetMs: SECOND },
      { unit: 'minute', limit: 10, windowMs: MINUTE, remaining: 9, resetMs: MINUTE },
    ]);
    now = 400;
    expect(consume(q).units).toEqual([
      { unit: 'second', limit: 2, windowMs: SECOND, remaining: 0, resetMs: 600 },
      { unit: 'minute', limit: 10, windowMs: MINUTE, remaining: 8, resetMs: 59_600 },
    ]);
    now = 500;
    expect(consume(q)).toEqual({
      allowed: false,
      retryAfterMs: 500,
      blocked: false,
      unit: 'second',
      units: [
        { unit: 'second', limit: 2, windowMs: SECOND, remaining: 0, resetMs: 500 },
        { unit: 'minute', limit: 10, windowMs: MINUTE, remaining: 8, resetMs: 59_500 },
      ],
    });
  });

  describe('blocks', () => {
    const limits = [unit('second', 1)];

    it('starts a block with retryAfterMs = blockMs', () => {
      const q = query(limits, counter(), 5 * SECOND);
      consume(q);
      expect(consume(q)).toEqual({
        allowed: false,
        retryAfterMs: 5 * SECOND,
        blocked: true,
        unit: 'second',
        units: [{ unit: 'second', limit: 1, windowMs: SECOND, remaining: 0, resetMs: SECOND }],
      });
      expect(backend.isBlocked('alice')).toBe(5 * SECOND);
    });

    it('applies to every counter of the user, and to no other user', () => {
      const q = query(limits, counter(), 5 * SECOND);
      consume(q);
      consume(q);
      now = 100;
      const elsewhere = query([unit('hour', 1000)], counter('alice', 'zone:other', 'GET'));
      // Rejected by the block alone (that counter has room), counting nothing there.
      expect(consume(elsewhere)).toEqual({
        allowed: false,
        retryAfterMs: 4_900,
        blocked: true,
        unit: undefined,
        units: [{ unit: 'hour', limit: 1000, windowMs: HOUR, remaining: 1000, resetMs: HOUR }],
      });
      expect(consume(query(limits, counter('bob'), 5 * SECOND)).allowed).toBe(true);
      expect(backend.isBlocked('bob')).toBe(0);
    });

    it('is not extended by requests made while blocked, and ends exactly at its end', () => {
      const q = query(limits, counter(), 5 * SECOND);
      consume(q);
      consume(q);
      now = 3 * SECOND;
      expect(consume(q)).toMatchObject({ allowed: false, blocked: true, retryAfterMs: 2 * SECOND });
      expect(backend.isBlocked('alice')).toBe(2 * SECOND);
      now = 5 * SECOND - 1;
      expect(consume(q)).toMatchObject({ allowed: false, blocked: true, retryAfterMs: 1 });
      now = 5 * SECOND;
      expect(backend.isBlocked('alice')).toBe(0);
      expect(consume(q)).toMatchObject({ allowed: true, blocked: false });
    });

    it('reports the longer of the block and the unit wait', () => {
      const q = query([unit('minute', 1)], counter(), 5 * SECOND);
      consume(q);
      expect(consume(q)).toMatchObject({ allowed: false, blocked: true, retryAfterMs: MINUTE });
      now = 5 * SECOND; // block over, minute still exhausted: blocked again
      expect(consume(q)).toMatchObject({
        allowed: false,
        blocked: true,
        unit: 'minute',
        retryAfterMs: 55 * SECOND,
      });
    });

    it('unblock lifts an active block and says whether there was one', () => {
      const q = query(limits, counter(), 5 * SECOND);
      expect(backend.unblock('alice')).toBe(false);
      consume(q);
      consume(q);
      expect(backend.unblock('alice')).toBe(true);
      expect(backend.isBlocked('alice')).toBe(0);
      expect(backend.unblock('alice')).toBe(false);
      now = SECOND;
      expect(consume(q).allowed).toBe(true);

      consume(q); // blocked again until 6 s
      now = 6 * SECOND;
      expect(backend.unblock('alice')).toBe(false); // expired, nothing to lift
    });
  });

  it('reset forgets every unit of one counter only, and says whether any existed', () => {
    const limits = [unit('second', 1), unit('minute', 1)];
    const mine = query(limits);
    const other = query(limits, counter('alice', 'path:/b'));
    expect(backend.reset(mine.counter)).toBe(false);
    consume(mine);
    consume(other);
    expect(consume(mine).allowed).toBe(false);
    expect(backend.reset(mine.counter)).toBe(true);
    expect(consume(mine).allowed).toBe(true);
    expect(consume(other).allowed).toBe(false);
    expect(backend.reset(counter('nobody'))).toBe(false);
  });

  it('reset does not lift the block', () => {
    const q = query([unit('second', 1)], counter(), 5 * SECOND);
    consume(q);
    consume(q);
    expect(backend.reset(q.counter)).toBe(true);
    expect(consume(q)).toMatchObject({ allowed: false, blocked: true });
  });

  it('keeps counters apart whose parts only differ in where the separators fall', () => {
    const limits = [unit('minute', 1)];
    const a = query(limits, { scope: 'zone:a:b', method: 'c', user: 'd' });
    const b = query(limits, { scope: 'zone:a', method: 'b:c', user: 'd' });
    const c = query(limits, { scope: '1:x', method: '*', user: 'd' });
    const d = query(limits, { scope: '1', method: ':x1:*', user: 'd' });
    for (const q of [a, b, c, d]) expect(consume(q).allowed).toBe(true);
    expect(backend.size).toBe(4);
  });

  it('accepts units whose window differs from the standard one', () => {
    const short = query([{ unit: 'second', limit: 1, windowMs: 250 }]);
    const standard = query([unit('second', 1)], counter('bob'));
    consume(short);
    consume(standard);
    now = 250;
    expect(consume(short).allowed).toBe(true);
    expect(consume(standard).allowed).toBe(false);
  });

  describe('sweep', () => {
    it('reclaims expired windows without traffic and keeps live ones', () => {
      consume(query([unit('second', 1)], counter('a')));
      now = 500;
      consume(query([unit('second', 1)], counter('b')));
      consume(query([unit('minute', 1)], counter('c')));
      expect(backend.size).toBe(3);

      now = 1000;
      backend.sweep();
      expect(backend.size).toBe(2); // a's window is over
      expect(consume(query([unit('second', 1)], counter('b'))).allowed).toBe(false);

      now = 1500;
      backend.sweep();
      expect(backend.size).toBe(1);
      now = MINUTE + 499;
      backend.sweep();
      expect(backend.size).toBe(1); // c's minute ends at 60.5 s
      now = MINUTE + 500;
      backend.sweep();
      expect(backend.size).toBe(0);
    });

    it('keeps a window that restarted after older ones', () => {
      const a = query([unit('second', 1)], counter('a'));
      const b = query([unit('second', 1)], counter('b'));
      consume(a); // a: [0, 1000)
      now = 500;
      consume(b); // b: [500, 1500)
      now = 1200;
      consume(a); // a restarts: [1200, 2200), moved behind b
      now = 1600;
      backend.sweep();
      expect(backend.size).toBe(1);
      expect(consume(a).allowed).toBe(false); // still counted
    });

    it('reclaims expired blocks and keeps active ones', () => {
      const limits = [unit('second', 1)];
      for (const [user, blockMs] of [
        ['long', 60 * SECOND],
        ['short', 2 * SECOND],
      ] as const) {
        consume(query(limits, counter(user), blockMs));
        consume(query(limits, counter(user), blockMs));
      }
      expect(backend.size).toBe(4);
      now = 2 * SECOND;
      backend.sweep();
      expect(backend.size).toBe(1);
      expect(backend.isBlocked('long')).toBe(58 * SECOND);
      now = 60 * SECOND;
      backend.sweep();
      expect(backend.size).toBe(0);
    });
  });

  describe('maxKeys', () => {
    it('stays bounded and evicts the window that started first', () => {
      backend = make({ maxKeys: 3 });
      const limits = [unit('second', 1)];
      for (const [t, user] of [
        [0, 'a'],
        [10, 'b'],
        [20, 'c'],
        [30, 'd'],
      ] as const) {
        now = t;
        expect(consume(query(limits, counter(user))).allowed).toBe(true);
        expect(backend.size).toBeLessThanOrEqual(3);
      }
      now = 40;
      // b, c and d are still counted; a was evicted and gets a fresh window (evicting b).
      expect(consume(query(limits, counter('b'))).allowed).toBe(false);
      expect(consume(query(limits, counter('c'))).allowed).toBe(false);
      expect(consume(query(limits, counter('d'))).allowed).toBe(false);
      expect(consume(query(limits, counter('a'))).allowed).toBe(true);
      expect(consume(query(limits, counter('b'))).allowed).toBe(true);
      expect(backend.size).toBe(3);
    });

    it('drops expired entries before evicting a live one', () => {
      backend = make({ maxKeys: 2 });
      consume(query([unit('minute', 1)], counter('x'))); // oldest, but live for a minute
      now = 500;
      consume(query([unit('second', 1)], counter('y'))); // over at 1500
      now = 2000;
      consume(query([unit('second', 1)], counter('z')));
      expect(backend.size).toBe(2);
      expect(consume(query([unit('minute', 1)], counter('x'))).allowed).toBe(false);
    });

    it('evicts blocks last, oldest first', () => {
      backend = make({ maxKeys: 2 });
      const limits = [unit('second', 1)];
      const block = 10 * SECOND;
      consume(query(limits, counter('a'), block));
      consume(query(limits, counter('a'), block)); // a blocked; a's window + block fill the store
      now = 10;
      consume(query(limits, counter('b'), block)); // evicts a's window, not a's block
      expect(backend.isBlocked('a')).toBeGreaterThan(0);
      now = 20;
      consume(query(limits, counter('b'), block)); // b blocked: evicts b's own window
      expect(backend.isBlocked('a')).toBeGreaterThan(0);
      expect(backend.isBlocked('b')).toBeGreaterThan(0);
      now = 30;
      consume(query(limits, counter('c'), block)); // only blocks left: a's goes
      expect(backend.isBlocked('a')).toBe(0);
      expect(backend.isBlocked('b')).toBeGreaterThan(0);
      expect(backend.size).toBe(2);
    });

    it('never grows past maxKeys under many distinct users', () => {
      backend = make({ maxKeys: 100 });
      const limits = [unit('second', 5), unit('day', 100)];
      for (let i = 0; i < 5_000; i++) {
        now = i;
        consume(query(limits, counter(`user-${i}`), i % 7 === 0 ? MINUTE : 0));
        expect(backend.size).toBeLessThanOrEqual(100);
      }
    });
  });

  describe('at maxKeys, under a flood of new identities', () => {
    // Long enough that no flood window expires: every new identity evicts a live one. Each round
    // deletes a whole store's worth of entries at the front, so the maps are rebuilt many times.
    const perMinute = [unit('minute', 1)];
    const flood = (user: string, limits = perMinute, blockMs = 0): ConsumeResult =>
      consume(query(limits, counter(user), blockMs));
    /** Whether the user's minute window is held: a rejection, which writes nothing. */
    const held = (user: string): boolean => !flood(user).allowed;

    it('stays at maxKeys and evicts the window that started first, round after round', () => {
      const maxKeys = 50;
      backend = make({ maxKeys });
      let sizeSeen = 0;
      for (let i = 0; i < 40 * maxKeys; i++) {
        now = i;
        expect(flood(`u${i}`).allowed).toBe(true);
        sizeSeen = Math.max(sizeSeen, backend.size);
        if (i % maxKeys === maxKeys - 1) {
          // Exactly the newest maxKeys identities are held, the older ones were evicted.
          for (let j = i - maxKeys + 1; j <= i; j++) expect(held(`u${j}`)).toBe(true);
        }
      }
      expect(sizeSeen).toBe(maxKeys);
      expect(backend.size).toBe(maxKeys);
      expect(flood(`u${39 * maxKeys - 1}`).allowed).toBe(true); // evicted: a fresh window
    });

    it('drops expired windows before evicting live ones, round after round', () => {
      const maxKeys = 20;
      backend = make({ maxKeys });
      const perSecond = [unit('second', 1)];
      const limitsOf = (i: number) => (i % 2 === 0 ? perSecond : perMinute);
      for (let i = 0; i < 1_000; i++) {
        now = i * 100; // a per-second window expires 10 identities later
        flood(`u${i}`, limitsOf(i));
        expect(backend.size).toBeLessThanOrEqual(maxKeys);
      }
      // Held: the 5 per-second windows still live (the last 10 identities), and so the 15
      // newest per-minute ones, going back 30 identities. Evicting by age alone would have
      // kept the last 20 identities instead.
      for (let i = 990; i < 1_000; i += 2) {
        expect(consume(query(perSecond, counter(`u${i}`))).allowed).toBe(false);
      }
      for (let i = 971; i < 1_000; i += 2) expect(held(`u${i}`)).toBe(true);
      expect(backend.size).toBe(maxKeys);
      expect(flood('u969').allowed).toBe(true); // the newest per-minute window evicted
    });

    it('does not take a restarted window for an old one', () => {
      backend = make({ maxKeys: 4 });
      const short = [{ unit: 'second' as const, limit: 1, windowMs: 100 }];
      flood('r', short); // r: [0, 100)
      now = 10;
      flood('s', short); // s: [10, 110)
      now = 20;
      flood('f1');
      now = 30;
      flood('f2');
      backend.sweep(); // looks at the front of each unit: r, f1
      now = 100;
      flood('r', short); // r restarts: [100, 200), behind s
      now = 105;
      flood('f3'); // full: the window that started first is s (at 10), not r (now at 100)
      expect(consume(query(short, counter('r'))).allowed).toBe(false);
      for (const user of ['f1', 'f2', 'f3']) expect(held(user)).toBe(true);
      expect(backend.size).toBe(4);
      expect(consume(query(short, counter('s'))).allowed).toBe(true); // s was evicted
    });

    it('drops an expired window behind a restarted one rather than evict a live one', () => {
      backend = make({ maxKeys: 3 });
      const short = [{ unit: 'second' as const, limit: 1, windowMs: 100 }];
      flood('r', short); // r: [0, 100)
      now = 10;
      flood('s', short); // s: [10, 110)
      backend.sweep(); // looks at the front: r
      now = 100;
      flood('r', short); // r restarts: [100, 200), behind s
      now = 115;
      flood('f1'); // not full yet; s has expired
      now = 116;
      flood('f2'); // full: s is dropped, no live window is evicted
      expect(consume(query(short, counter('r'))).allowed).toBe(false);
      expect(held('f1')).toBe(true);
      expect(held('f2')).toBe(true);
      expect(backend.size).toBe(3);
    });

    it('keeps windows restarted during the flood, which are among the newest', () => {
      const maxKeys = 20;
      backend = make({ maxKeys });
      const short = [{ unit: 'second' as const, limit: 2, windowMs: 5 }];
      for (let t = 0; t < 2_000; t++) {
        now = t;
        flood(`u${t}`);
        // r restarts every 5 ms and counts twice in each window; had it been evicted as old, the
        // third request of a window would get a fresh window and be admitted.
        const phase = t % 5;
        const result = consume(query(short, counter('r')));
        expect(result.allowed).toBe(phase < 2);
        expect(backend.size).toBeLessThanOrEqual(maxKeys);
      }
    });

    it('never evicts a block while a window remains', () => {
      const maxKeys = 10;
      backend = make({ maxKeys });
      for (const user of ['a', 'b', 'c']) {
        flood(user, perMinute, HOUR);
        flood(user, perMinute, HOUR); // blocked: a block beside the window
      }
      for (let i = 0; i < 100 * maxKeys; i++) {
        now = i;
        flood(`u${i}`);
        expect(backend.size).toBeLessThanOrEqual(maxKeys);
        for (const user of ['a', 'b', 'c']) expect(backend.isBlocked(user)).toBe(HOUR - now);
      }
    });

    it('evicts blocks oldest first once only blocks are left, a renewed block counting as new', () => {
      const maxKeys = 10;
      backend = make({ maxKeys });
      const never = [unit('minute', 0)]; // every request rejected: a block and no window
      for (let i = 0; i < 100 * maxKeys; i++) {
        now = i;
        flood(`b${i}`, never, HOUR);
        expect(backend.size).toBeLessThanOrEqual(maxKeys);
      }
      const blocked = (user: string): boolean => backend.isBlocked(user) > 0;
      for (let i = 0; i < 100 * maxKeys; i++) expect(blocked(`b${i}`)).toBe(i >= 99 * maxKeys);

      // The oldest block, lifted and started again, goes to the back.
      const oldest = `b${99 * maxKeys}`;
      backend.unblock(oldest);
      flood(oldest, never, HOUR);
      now = 100 * maxKeys;
      flood('new', never, HOUR);
      expect(blocked(oldest)).toBe(true);
      expect(blocked(`b${99 * maxKeys + 1}`)).toBe(false); // the oldest block left
      expect(blocked('new')).toBe(true);
      expect(backend.size).toBe(maxKeys);
    });

    it('keeps its order across sweeps and long stretches without eviction', () => {
      const maxKeys = 50;
      backend = make({ maxKeys });
      for (let i = 0; i < 3 * maxKeys; i++) {
        now = i;
        flood(`u${i}`);
      }
      // u100 to u149 are held. Then many restarts and sweeps, and no new key, so no eviction.
      backend.reset(counter('u100'));
      const short = [{ unit: 'second' as const, limit: 1, windowMs: 2 }];
      for (let t = 0; t < 1_000; t++) {
        now = 3 * maxKeys + t;
        flood('short', short); // a new window every other millisecond, each behind the last
        if (t % 100 === 0) backend.sweep();
      }
      backend.sweep();
      backend.sweep();
      // short's last window started 1 ms ago and is live: the flood below stays at this time.
      const u = (i: number): string => `u${2 * maxKeys + i}`;
      // The flood goes on: the older windows go first, the restarted one is among the newest.
      for (let i = 1; i < maxKeys; i++) {
        flood(`v${i}`);
        // Held: u(i+1)…u(maxKeys-1), short and v1…vi, which is maxKeys windows: the rest went.
        for (let j = i + 1; j < maxKeys; j++) expect(held(u(j))).toBe(true);
        for (let j = 1; j <= i; j++) expect(held(`v${j}`)).toBe(true);
        expect(consume(query(short, counter('short'))).allowed).toBe(false);
        expect(backend.size).toBe(maxKeys);
      }
      flood('last'); // only now is short the window that started first
      expect(consume(query(short, counter('short'))).allowed).toBe(true);
    });
  });

  describe('peek, release and block, where only memory has something to say', () => {
    it('peeks and releases synchronously, and neither creates an entry', () => {
      const q = query([unit('second', 2), unit('minute', 5)]);
      const peeked = backend.peek(q);
      expect(peeked).not.toBeInstanceOf(Promise);
      expect(peeked.units.map((u) => u.remaining)).toEqual([2, 5]);
      expect(backend.release(q)).toBeUndefined();
      expect(backend.size).toBe(0);
      consume(q);
      expect(backend.size).toBe(2);
      backend.peek(q);
      backend.release(q);
      expect(backend.size).toBe(2);
    });

    it('sweeps an entry a release emptied once it expires: a full bucket at once, a log with its entries', () => {
      const bucket = {
        ...query([unit('second', 2)], counter('bucket')),
        algorithm: 'token-bucket' as const,
      };
      const log = {
        ...query([unit('second', 2)], counter('log')),
        algorithm: 'sliding-log' as const,
      };
      consume(bucket);
      consume(log);
      now = 100;
      backend.release(bucket); // full again: the bucket ends now
      backend.release(log); // its only entry gone
      expect(backend.size).toBe(2);
      backend.sweep();
      expect(backend.size).toBe(0);
    });

    it("takes an entry toward maxKeys for a block by hand, evicted last, as a rule's block", () => {
      backend = make({ maxKeys: 2 });
      const limits = [unit('minute', 5)];
      consume(query(limits, counter('a')));
      backend.block('x', 10 * SECOND);
      expect(backend.size).toBe(2);
      now = 10;
      consume(query(limits, counter('b'))); // evicts a's window, not the block
      expect(backend.blockedFor('x')).toBe(10 * SECOND - 10);
      backend.block('y', 10 * SECOND); // evicts b's window
      expect(backend.blockedFor('x')).toBeGreaterThan(0);
      backend.block('z', 10 * SECOND); // only blocks left: x's, the oldest, goes
      expect([backend.blockedFor('x'), backend.blockedFor('y'), backend.blockedFor('z')]).toEqual([
        0,
        10 * SECOND,
        10 * SECOND,
      ]);
      // Replacing y's block moves it behind z's: z's is the oldest now.
      backend.block('y', 5 * SECOND);
      backend.block('w', SECOND);
      expect([backend.blockedFor('y'), backend.blockedFor('z'), backend.blockedFor('w')]).toEqual([
        5 * SECOND,
        0,
        SECOND,
      ]);
      expect(backend.size).toBe(2);
    });

    it('keeps isBlocked, the name blockedFor had on MemoryBackend before', () => {
      backend.block('a', 3 * SECOND);
      now = SECOND;
      expect(backend.isBlocked('a')).toBe(2 * SECOND);
      expect(backend.isBlocked('a')).toBe(backend.blockedFor('a'));
      expect(backend.isBlocked('b')).toBe(0);
    });
  });

  describe('sweep timer', () => {
    const realSetInterval = globalThis.setInterval;
    let timers: NodeJS.Timeout[];
    let callbacks: (() => void)[];

    beforeEach(() => {
      timers = [];
      callbacks = [];
      globalThis.setInterval = ((callback: () => void, ms?: number) => {
        const timer = realSetInterval(callback, ms);
        timers.push(timer);
        callbacks.push(callback);
        return timer;
      }) as typeof setInterval;
    });

    afterEach(() => {
      globalThis.setInterval = realSetInterval;
    });

    const timeouts = (): number =>
      process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

    it('starts one unref timer on the first request, however many keys are tracked', () => {
      backend = make({ sweepIntervalMs: 10_000 });
      expect(timers).toHaveLength(0); // lazy: nothing before the first request
      const before = timeouts();
      const limits = [unit('second', 1), unit('minute', 10)];
      for (let i = 0; i < 10_000; i++) consume(query(limits, counter(`user-${i}`)));
      expect(backend.size).toBe(20_000);
      expect(timers).toHaveLength(1);
      expect(timers[0].hasRef()).toBe(false); // never keeps the process alive
      // Unref'd timers are not listed as active resources: at most the one timer appeared.
      expect(timeouts() - before).toBeLessThanOrEqual(1);
    });

    it('sweeps expired entries when it fires, without traffic', () => {
      backend = make({ sweepIntervalMs: 10_000 });
      consume(query([unit('second', 1)]));
      expect(backend.size).toBe(1);
      now = SECOND;
      callbacks[0]();
      expect(backend.size).toBe(0);
    });

    it('close() removes the timer', () => {
      backend = make({ sweepIntervalMs: 10_000 });
      consume(query([unit('second', 1)]));
      const before = timeouts();
      timers[0].ref(); // make it visible in the active resources
      expect(timeouts()).toBe(before + 1);
      backend.close();
      expect(timeouts()).toBe(before);
    });

    it('starts the timer on a block by hand too, which it then sweeps without traffic', () => {
      backend = make({ sweepIntervalMs: 10_000 });
      backend.block('alice', SECOND);
      expect(timers).toHaveLength(1);
      expect(backend.size).toBe(1);
      now = SECOND;
      callbacks[0]();
      expect(backend.size).toBe(0);
    });

    it('starts no timer when sweepIntervalMs is 0', () => {
      backend = make({ sweepIntervalMs: 0 });
      consume(query([unit('second', 1)]));
      expect(timers).toHaveLength(0);
    });
  });

  it('uses a monotonic millisecond clock by default', () => {
    const real = new MemoryBackend({ sweepIntervalMs: 0 });
    const q = query([unit('second', 1)]);
    expect(consume(q, real).allowed).toBe(true);
    const rejected = consume(q, real);
    expect(rejected.allowed).toBe(false);
    expect(rejected.retryAfterMs).toBeGreaterThan(0);
    expect(rejected.retryAfterMs).toBeLessThanOrEqual(SECOND);
  });

  it("describes itself in log lines by its class name (RateLimitBackend's default)", () => {
    expect(backend.describe()).toBe('MemoryBackend');
    class TenantBackend extends MemoryBackend {}
    expect(new TenantBackend({ sweepIntervalMs: 0 }).describe()).toBe('TenantBackend');
  });

  describe('algorithms', () => {
    const ALGORITHMS = ['fixed-window', 'sliding-window', 'sliding-log', 'token-bucket'] as const;
    type Algorithm = (typeof ALGORITHMS)[number];

    /** What one request asks besides its units. */
    interface Ask {
      readonly algorithm?: Algorithm;
      readonly cost?: number;
      readonly burst?: number;
      readonly blockMs?: number;
      readonly user?: string;
    }

    const ask = (limits: readonly UnitLimit[], options: Ask = {}): ConsumeQuery => ({
      counter: counter(options.user),
      limits,
      blockMs: options.blockMs ?? 0,
      algorithm: options.algorithm,
      cost: options.cost,
      burst: options.burst,
    });

    /** The expected state of one unit. */
    const state = (limit: UnitLimit, remaining: number, resetMs: number): UnitState => ({
      ...limit,
      remaining,
      resetMs,
    });

    const allowedWith = (...units: UnitState[]): ConsumeResult => ({
      allowed: true,
      retryAfterMs: 0,
      blocked: false,
      unit: undefined,
      units,
    });

    const rejectedWith = (
      retryAfterMs: number,
      exhausted: ConsumeResult['unit'],
      ...units: UnitState[]
    ): ConsumeResult => ({ allowed: false, retryAfterMs, blocked: false, unit: exhausted, units });

    describe('option and getters', () => {
      it('counts fixed windows by default and implements all four algorithms', () => {
        expect(backend.algorithm).toBe('fixed-window');
        expect(backend.algorithms).toEqual(ALGORITHMS);
        expect(Object.isFrozen(backend.algorithms)).toBe(true);
        expect(make({ algorithm: 'token-bucket' }).algorithm).toBe('token-bucket');
      });

      it("counts a query without algorithm with the backend's, and one that names it with its own", () => {
        backend = make({ algorithm: 'token-bucket' });
        const perSecond = [unit('second', 2)];
        expect(consume(ask(perSecond)).allowed).toBe(true);
        expect(consume(ask(perSecond)).allowed).toBe(true);
        // A bucket refills one token every 500 ms; a fixed window would wait 1000.
        expect(consume(ask(perSecond))).toMatchObject({ allowed: false, retryAfterMs: 500 });
        // The fixed-window counter of the same counter and unit is its own.
        const fixed = ask(perSecond, { algorithm: 'fixed-window' });
        expect(consume(fixed)).toEqual(allowedWith(state(perSecond[0]!, 1, SECOND)));
      });

      it.each([
        ['token_bucket', /"algorithm": must be one of .*; did you mean 'token-bucket'\?/],
        ['Sliding-Log', /did you mean 'sliding-log'\?/],
        [
          'fixed',
          /"algorithm": must be one of 'fixed-window', 'sliding-window', 'sliding-log', 'token-bucket' Leave it unset/,
        ],
        [42, /Got 42\./],
      ])('rejects the algorithm %p, naming the one meant', (value, message) => {
        const build = () =>
          new MemoryBackend({ algorithm: value } as unknown as MemoryBackendOptions);
        expect(build).toThrow(RateLimitConfigError);
        expect(build).toThrow(message);
      });

      it('points a strategy option to algorithm', () => {
        const build = () =>
          new MemoryBackend({ strategy: 'token-bucket' } as unknown as MemoryBackendOptions);
        expect(build).toThrow(/"strategy": .*did you mean "algorithm"\?/);
      });

      it('refuses a query naming an algorithm it does not know', () => {
        const bad = {
          ...ask([unit('second', 1)]),
          algorithm: 'leaky-bucket',
        } as unknown as ConsumeQuery;
        expect(() => backend.consume(bad)).toThrow(/unknown algorithm "leaky-bucket"/);
      });
    });

    describe('fixed-window', () => {
      it('counts costs and rejects a request whose cost does not fit, counting nothing', () => {
        const perMinute = unit('minute', 10);
        const fixed = (cost: number) => ask([perMinute], { algorithm: 'fixed-window', cost });
        expect(consume(fixed(4))).toEqual(allowedWith(state(perMinute, 6, MINUTE)));
        now = 1000;
        expect(consume(fixed(4))).toEqual(allowedWith(state(perMinute, 2, 59_000)));
        now = 2000;
        expect(consume(fixed(3))).toEqual(
          rejectedWith(58_000, 'minute', state(perMinute, 2, 58_000)),
        );
        expect(consume(fixed(2))).toEqual(allowedWith(state(perMinute, 0, 58_000)));
        now = MINUTE;
        expect(consume(fixed(10))).toEqual(allowedWith(state(perMinute, 0, MINUTE)));
      });
    });

    describe('token-bucket', () => {
      it('admits the limit at once, then one request per W / L, the wait being the next token', () => {
        const perMinute = unit('minute', 10);
        const bucket = (cost = 1) => ask([perMinute], { algorithm: 'token-bucket', cost });
        expect(consume(bucket())).toEqual(allowedWith(state(perMinute, 9, 6_000)));
        expect(consume(bucket(9))).toEqual(allowedWith(state(perMinute, 0, MINUTE)));
        expect(consume(bucket())).toEqual(
          rejectedWith(6_000, 'minute', state(perMinute, 0, MINUTE)),
        );
        now = 1_000;
        expect(consume(bucket())).toEqual(
          rejectedWith(5_000, 'minute', state(perMinute, 0, 59_000)),
        );
        now = 6_000;
        expect(consume(bucket())).toEqual(allowedWith(state(perMinute, 0, MINUTE)));
        now = 36_000; // half refilled: 5 tokens
        expect(consume(bucket(6))).toEqual(
          rejectedWith(6_000, 'minute', state(perMinute, 5, 30_000)),
        );
        expect(consume(bucket(5))).toEqual(allowedWith(state(perMinute, 0, MINUTE)));
      });

      it('keeps fractions of a millisecond exactly (7 per second, a burst of 3)', () => {
        const perSecond = unit('second', 7);
        const bucket = (cost = 1) =>
          ask([perSecond], { algorithm: 'token-bucket', cost, burst: 3 });
        // D = 3000 (a token is 1000 units, a millisecond 7): full again in ceil(3000 / 7) ms.
        expect(consume(bucket(3))).toEqual(allowedWith(state(perSecond, 0, 429)));
        now = 100; // D = (429 - 100) × 7 - 3 = 2300: 300 units short, 43 ms
        expect(consume(bucket())).toEqual(rejectedWith(43, 'second', state(perSecond, 0, 329)));
        now = 142; // D = 2006: 6 units short, still 1 ms
        expect(consume(bucket())).toEqual(rejectedWith(1, 'second', state(perSecond, 0, 287)));
        now = 143; // D = 1999: fits; D = 2999, full again in 429 ms
        expect(consume(bucket())).toEqual(allowedWith(state(perSecond, 0, 429)));
        // A cost above the burst never fits: the window is its wait, and nothing is taken.
        expect(consume(bucket(4))).toEqual(
          rejectedWith(SECOND, 'second', state(perSecond, 0, 429)),
        );
        now = 1_000; // full again: one token taken leaves D = 1000
        expect(consume(bucket())).toEqual(allowedWith(state(perSecond, 2, 143)));
      });

      it('admits a burst above the limit, then refills at the limit', () => {
        const perSecond = unit('second', 2);
        const bucket = () => ask([perSecond], { algorithm: 'token-bucket', burst: 5 });
        for (let taken = 1; taken <= 5; taken++) {
          expect(consume(bucket())).toEqual(allowedWith(state(perSecond, 5 - taken, 500 * taken)));
        }
        expect(consume(bucket())).toEqual(rejectedWith(500, 'second', state(perSecond, 0, 2_500)));
        now = 500;
        expect(consume(bucket())).toEqual(allowedWith(state(perSecond, 0, 2_500)));
      });

      it('reports a full bucket as nothing to wait for (reset 0)', () => {
        const perSecond = unit('second', 5);
        const tooBig = ask([perSecond], { algorithm: 'token-bucket', cost: 6 });
        expect(consume(tooBig)).toEqual(rejectedWith(SECOND, 'second', state(perSecond, 5, 0)));
        // With a burst of 8 the same cost fits.
        expect(consume({ ...tooBig, burst: 8 })).toEqual(allowedWith(state(perSecond, 2, 1_200)));
      });
    });

    describe('sliding-window', () => {
      const slide = (limits: readonly UnitLimit[], cost = 1) =>
        ask(limits, { algorithm: 'sliding-window', cost });

      it('weighs the previous window by what is left of it, in exact integers', () => {
        const perMinute = unit('minute', 10);
        now = 30_000; // window 0 is [0, 60 s)
        expect(consume(slide([perMinute], 8))).toEqual(allowedWith(state(perMinute, 2, 30_000)));
        // 11 > 10 in this window: in the next one, 8 × (1 - e/W) + 3 ≤ 10 from e = 7.5 s.
        expect(consume(slide([perMinute], 3))).toEqual(
          rejectedWith(37_500, 'minute', state(perMinute, 2, 30_000)),
        );
        now = 67_499; // 8 × 52,501 + 3 × 60,000 > 10 × 60,000 by 8
        expect(consume(slide([perMinute], 3))).toEqual(
          rejectedWith(1, 'minute', state(perMinute, 2, 52_501)),
        );
        now = 67_500;
        expect(consume(slide([perMinute], 3))).toEqual(allowedWith(state(perMinute, 0, 52_500)));
        // 8 × (1 - e/W) + 4 ≤ 10 from e = 15 s.
        expect(consume(slide([perMinute]))).toEqual(
          rejectedWith(7_500, 'minute', state(perMinute, 0, 52_500)),
        );
        now = 130_000; // window 2: the previous one holds 3, weighted 50/60
        expect(consume(slide([perMinute]))).toEqual(allowedWith(state(perMinute, 6, 50_000)));
        now = 250_000; // window 4: window 3 counted nothing, so nothing weighs
        expect(consume(slide([perMinute], 10))).toEqual(allowedWith(state(perMinute, 0, 50_000)));
      });

      it('waits into the next window when the rest of this one cannot fit the request', () => {
        const perSecond = unit('second', 10);
        expect(consume(slide([perSecond], 5))).toEqual(allowedWith(state(perSecond, 5, SECOND)));
        now = 1_800; // 5 × 0.2 + 9 = 10
        expect(consume(slide([perSecond], 9))).toEqual(allowedWith(state(perSecond, 0, 200)));
        // 10 + cost fits nowhere in this window: at the start of the next one, 9 × 1 + 1 ≤ 10.
        expect(consume(slide([perSecond]))).toEqual(
          rejectedWith(200, 'second', state(perSecond, 0, 200)),
        );
        // Cost 2 waits until 9 × (1 - e/W) + 2 ≤ 10: e = 112 ms into the next window.
        expect(consume(slide([perSecond], 2))).toEqual(
          rejectedWith(312, 'second', state(perSecond, 0, 200)),
        );
        now = 2_111;
        expect(consume(slide([perSecond], 2)).allowed).toBe(false);
        now = 2_112;
        expect(consume(slide([perSecond], 2))).toEqual(allowedWith(state(perSecond, 0, 888)));
      });

      it("aligns windows to multiples of the window on the backend's clock", () => {
        now = 45_000;
        const perMinute = unit('minute', 10);
        expect(consume(slide([perMinute]))).toEqual(allowedWith(state(perMinute, 9, 15_000)));
        now = 2 ** 40 + 1_234; // 2^40 ms = 18,325,193 minutes + 47,776 ms
        const fresh = make();
        expect(consume(slide([perMinute]), fresh)).toEqual(
          allowedWith(state(perMinute, 9, MINUTE - 47_776 - 1_234)),
        );
      });
    });

    describe('sliding-log', () => {
      it('decides as SlidingRedisBackend, with cost entries per admitted request', () => {
        const perSecond = unit('second', 3);
        const log = (cost = 1, limit = perSecond) =>
          ask([limit], { algorithm: 'sliding-log', cost });
        expect(consume(log(2))).toEqual(allowedWith(state(perSecond, 1, SECOND)));
        now = 300;
        expect(consume(log())).toEqual(allowedWith(state(perSecond, 0, 700)));
        now = 400;
        // The wait is until the (n + cost - L)-th oldest entry stops counting.
        expect(consume(log(1))).toEqual(rejectedWith(600, 'second', state(perSecond, 0, 600)));
        expect(consume(log(2))).toEqual(rejectedWith(600, 'second', state(perSecond, 0, 600)));
        expect(consume(log(3))).toEqual(rejectedWith(900, 'second', state(perSecond, 0, 600)));
        expect(consume(log(4))).toEqual(rejectedWith(SECOND, 'second', state(perSecond, 0, 600)));
        now = 1_000; // both entries of t = 0 stopped counting
        expect(consume(log(2))).toEqual(allowedWith(state(perSecond, 0, 300)));
        expect(consume(log())).toEqual(rejectedWith(300, 'second', state(perSecond, 0, 300)));
        // A lower limit on the same log: 3 entries, 1 allowed: the third oldest must go.
        const one = unit('second', 1);
        expect(consume(log(1, one))).toEqual(rejectedWith(SECOND, 'second', state(one, 0, SECOND)));
        now = 1_300;
        expect(consume(log())).toEqual(allowedWith(state(perSecond, 0, 700)));
      });
    });

    describe.each(ALGORITHMS)('with every algorithm: %s', (algorithm) => {
      it('rejects every request under a limit of 0, with the window as the wait', () => {
        const never = unit('hour', 0);
        for (const t of [0, 10 * SECOND]) {
          now = t;
          // The two-window counter's reset is the end of the aligned window, as for any state.
          const reset = algorithm === 'sliding-window' ? HOUR - t : HOUR;
          expect(consume(ask([unit('second', 5), never], { algorithm }))).toEqual(
            rejectedWith(
              HOUR,
              'hour',
              expect.objectContaining({ unit: 'second', remaining: 5 }),
              state(never, 0, reset),
            ),
          );
        }
        expect(backend.size).toBe(0);
      });

      it('rejects a cost above the limit with the window as the wait, and takes nothing', () => {
        const limits = [unit('second', 5), unit('minute', 100)];
        const first = consume(ask(limits, { algorithm }));
        const tooBig = consume(ask(limits, { algorithm, cost: 6 }));
        expect(tooBig).toMatchObject({ allowed: false, retryAfterMs: SECOND, unit: 'second' });
        expect(tooBig.units).toEqual(first.units); // nothing counted, no time passed
        expect(consume(ask(limits, { algorithm, cost: 4 })).units.map((u) => u.remaining)).toEqual([
          0, 95,
        ]);
      });

      it('counts nothing in any unit when one unit rejects', () => {
        const limits = [unit('second', 1), unit('minute', 2)];
        expect(consume(ask(limits, { algorithm })).allowed).toBe(true);
        now = 100;
        const rejected = consume(ask(limits, { algorithm }));
        expect(rejected).toMatchObject({ allowed: false, unit: 'second' });
        expect(rejected.units[1]!.remaining).toBe(1);
        now = 2 * SECOND;
        expect(consume(ask(limits, { algorithm })).units[1]!.remaining).toBe(0);
      });

      it('blocks the user, counts nothing while blocked, and ends the block exactly', () => {
        const perSecond = [unit('second', 1)];
        const q = ask(perSecond, { algorithm, blockMs: 5 * SECOND });
        expect(consume(q).allowed).toBe(true);
        expect(consume(q)).toMatchObject({
          allowed: false,
          blocked: true,
          retryAfterMs: 5_000,
          unit: 'second',
        });
        now = 2 * SECOND; // the unit has room again: only the block rejects
        // As it stands: empty (a full bucket has nothing to wait for).
        const reset = algorithm === 'token-bucket' ? 0 : SECOND;
        expect(consume(q)).toEqual({
          allowed: false,
          retryAfterMs: 3_000,
          blocked: true,
          unit: undefined,
          units: [state(perSecond[0]!, 1, reset)],
        });
        now = 5 * SECOND - 1;
        expect(consume(q).retryAfterMs).toBe(1);
        now = 5 * SECOND;
        expect(consume(q)).toMatchObject({ allowed: true, units: [{ remaining: 0 }] });
      });

      it('keeps windows of other lengths, and the window unit, as counters of their own', () => {
        const limits = [
          unit('minute', 1),
          { unit: 'window' as const, limit: 1, windowMs: MINUTE },
          { unit: 'window' as const, limit: 1, windowMs: 15 * MINUTE },
          { unit: 'minute' as const, limit: 1, windowMs: 30 * SECOND },
        ];
        for (const limit of limits) expect(consume(ask([limit], { algorithm })).allowed).toBe(true);
        for (const limit of limits)
          expect(consume(ask([limit], { algorithm })).allowed).toBe(false);
        expect(backend.size).toBe(4);
        now = 30 * MINUTE; // two of the longest windows: nothing weighs in any algorithm
        for (const limit of limits) expect(consume(ask([limit], { algorithm })).allowed).toBe(true);
      });

      it('reset forgets the counter in every window and algorithm it was counted with', () => {
        const limits = [unit('second', 1), { unit: 'window' as const, limit: 1, windowMs: HOUR }];
        const other = algorithm === 'fixed-window' ? 'sliding-log' : 'fixed-window';
        consume(ask(limits, { algorithm }));
        consume(ask(limits, { algorithm: other }));
        consume(ask(limits, { algorithm, user: 'bob' }));
        expect(backend.reset(counter())).toBe(true);
        expect(backend.size).toBe(2); // bob's
        expect(consume(ask(limits, { algorithm })).allowed).toBe(true);
        expect(consume(ask(limits, { algorithm: other })).allowed).toBe(true);
        now = 3 * HOUR; // every entry has expired: none was live
        expect(backend.reset(counter('bob'))).toBe(false);
      });

      it('at maxKeys, stays bounded and keeps the newest counters', () => {
        const maxKeys = 20;
        backend = make({ maxKeys });
        const perMinute = [unit('minute', 1)];
        for (let i = 0; i < 10 * maxKeys; i++) {
          now = i;
          expect(consume(ask(perMinute, { algorithm, user: `u${i}` })).allowed).toBe(true);
          expect(backend.size).toBeLessThanOrEqual(maxKeys);
        }
        for (let i = 9 * maxKeys; i < 10 * maxKeys; i++) {
          expect(consume(ask(perMinute, { algorithm, user: `u${i}` })).allowed).toBe(false);
        }
        expect(backend.size).toBe(maxKeys);
      });
    });

    describe('sweep and eviction of the new entries', () => {
      it('reclaims a two-window counter two windows after its window started', () => {
        consume(ask([unit('second', 5)], { algorithm: 'sliding-window' }));
        now = 1_999;
        backend.sweep();
        expect(backend.size).toBe(1); // still weighs in window 1
        now = 2_000;
        backend.sweep();
        expect(backend.size).toBe(0);
      });

      it('reclaims a bucket once it is full again, and a log once its newest entry stops counting', () => {
        consume(ask([unit('second', 2)], { algorithm: 'token-bucket', user: 'bucket' })); // full at 500
        consume(ask([unit('second', 3)], { algorithm: 'sliding-log', user: 'log' }));
        now = 300;
        consume(ask([unit('second', 3)], { algorithm: 'sliding-log', user: 'log' })); // over at 1300
        now = 499;
        backend.sweep();
        expect(backend.size).toBe(2);
        now = 500;
        backend.sweep();
        expect(backend.size).toBe(1);
        now = 1_299;
        backend.sweep();
        expect(backend.size).toBe(1);
        now = 1_300;
        backend.sweep();
        expect(backend.size).toBe(0);
      });

      it('moves a busy bucket to the back once its placement is a window old', () => {
        const perSecond = [unit('second', 10)];
        const busy = ask(perSecond, {
          algorithm: 'token-bucket',
          user: 'busy',
          cost: 10,
          burst: 20,
        });
        expect(consume(busy).units[0]!.resetMs).toBe(1_000); // placed at 0
        now = 100;
        consume(ask(perSecond, { algorithm: 'token-bucket', user: 'idle' })); // full at 200
        now = 600;
        expect(consume(busy).units[0]!.resetMs).toBe(1_400); // in place: placed 600 ms ago
        now = 700;
        backend.sweep();
        expect(backend.size).toBe(2); // idle expired, but waits behind busy (the documented delay)
        now = 1_200;
        consume(busy); // placed a window ago: moves to the back
        backend.sweep();
        expect(backend.size).toBe(1);
        expect(backend.reset(counter('busy'))).toBe(true);
      });

      it('evicts the entry placed earliest across algorithms', () => {
        backend = make({ maxKeys: 3 });
        const perMinute = [unit('minute', 1)];
        const as = (algorithm: Algorithm, user: string) => ask(perMinute, { algorithm, user });
        consume(as('fixed-window', 'a')); // placed at 0
        now = 10;
        consume(as('token-bucket', 'b')); // placed at 10
        now = 20;
        consume(as('sliding-window', 'c')); // its window started at 0
        now = 30;
        consume(as('fixed-window', 'd')); // evicts a (0, the fixed-window store comes first)
        now = 40;
        consume(as('fixed-window', 'e')); // evicts c (0), not b (10)
        for (const [algorithm, user] of [
          ['token-bucket', 'b'],
          ['fixed-window', 'd'],
          ['fixed-window', 'e'],
        ] as const) {
          expect(consume(as(algorithm, user)).allowed).toBe(false); // held (a rejection adds nothing)
        }
        expect(backend.size).toBe(3);
        expect(backend.reset(counter('a'))).toBe(false);
        expect(backend.reset(counter('c'))).toBe(false);
      });
    });
  });

  describe('options', () => {
    const invalid: [string, unknown][] = [
      ['maxKeys', 0],
      ['maxKeys', -5],
      ['maxKeys', 1.5],
      ['maxKeys', Number.NaN],
      ['maxKeys', Infinity],
      ['maxKeys', '1000'],
      ['maxKeys', 2 ** 24 + 1],
      ['sweepIntervalMs', -1],
      ['sweepIntervalMs', Number.NaN],
      ['sweepIntervalMs', 2 ** 31],
      ['sweepIntervalMs', '10s'],
      ['clock', 'performance.now'],
      ['clock', 42],
      ['algorithm', 'leaky-bucket'],
      ['algorithm', 1],
    ];

    it.each(invalid)('rejects %s = %p, naming the option', (option, value) => {
      const build = () => new MemoryBackend({ [option]: value } as MemoryBackendOptions);
      expect(build).toThrow(RateLimitConfigError);
      try {
        build();
      } catch (error) {
        expect(error).toMatchObject({ code: 'RATE_LIMIT_INVALID_OPTION' });
        expect((error as Error).message).toContain(`"${option}"`);
      }
    });

    it.each([
      ['maxSize', /"maxSize": is not a MemoryBackend option; did you mean "maxKeys"\?/],
      ['sweepInterval', /"sweepInterval": .*did you mean "sweepIntervalMs"\?/],
      ['testClock', /"testClock": .*did you mean "clock"\?/],
      ['maxkeys', /"maxkeys": .*did you mean "maxKeys"\?/],
    ])('rejects the unknown option %s, naming the one meant', (option, message) => {
      const build = () => new MemoryBackend({ [option]: 1 } as MemoryBackendOptions);
      expect(build).toThrow(RateLimitConfigError);
      expect(build).toThrow(message);
    });

    it('rejects options that are not an object', () => {
      expect(() => new MemoryBackend(42 as unknown as MemoryBackendOptions)).toThrow(
        RateLimitConfigError,
      );
    });

    it('accepts the defaults and the limits of each range', () => {
      expect(() => new MemoryBackend()).not.toThrow();
      expect(() => new MemoryBackend({ maxKeys: 1, sweepIntervalMs: 0 })).not.toThrow();
      expect(
        () => new MemoryBackend({ maxKeys: 2 ** 24, sweepIntervalMs: 2 ** 31 - 1 }),
      ).not.toThrow();
    });
  });
});
