import type { UnitLimit } from '../../rules/rule-units.js';
import type { UnitState } from '../rate-limit.backend.js';
import type { EntryStore } from './entry-store.js';
import { unitState, type UnitCounter } from './unit-counter.js';

/**
 * One counter's bucket in one unit, as the contract stores it: `end`, when the bucket is full
 * again, and `remainder`, so that the debt `D` (how far the theoretical arrival time lies ahead of
 * now, in units where a token is `W` and a millisecond is `L`) is `(end − now) × L − remainder`.
 * `placed` is when the entry was last set at the back of its store (see {@link TOKEN_BUCKET_COUNTER}).
 * Three in-object fields, set in the constructor so every bucket shares one hidden class.
 */
class TokenBucket {
  end: number;
  remainder: number;
  placed: number;

  constructor(end: number, remainder: number, placed: number) {
    this.end = end;
    this.remainder = remainder;
    this.placed = placed;
  }
}

/** The bucket's debt `D` at `now` (0 for no bucket, an idle one, or one a lower limit emptied). */
function debt(bucket: TokenBucket | undefined, rate: number, now: number): number {
  if (bucket === undefined || bucket.end <= now) return 0;
  return Math.max(0, (bucket.end - now) * rate - bucket.remainder);
}

/**
 * `'token-bucket'`: GCRA with `burst` tokens (the capacity; default the limit) refilled at `L` per
 * `W`, in exact integers. Admitted when `D + cost × W ≤ burst × W`.
 *
 * Placement: a bucket changes with every admitted request, and moving its entry to the back each
 * time (a `Map` delete and set) halved the decisions per second on 100,000 keys. So a bucket is set
 * at the back only when it is new or its placement is at least a window old: once per window per
 * busy bucket, as a fixed window restarts. A store is then ordered by placement; a bucket's last
 * admission is less than `W` after it, so it expires less than `W` + its refill time
 * (`ceil(burst × W / L)`) after its placement, and the sweep, which stops at the first live entry,
 * reclaims an expired bucket at most `W` + the longest refill time of its store after it expired.
 */
export const TOKEN_BUCKET_COUNTER: UnitCounter<TokenBucket> = {
  algorithm: 'token-bucket',

  capacity(limit: number, burst: number | undefined): number {
    return burst ?? limit;
  },

  wait(
    bucket: TokenBucket | undefined,
    limit: UnitLimit,
    burst: number,
    cost: number,
    now: number,
  ): number {
    const rate = limit.limit;
    const windowMs = limit.windowMs;
    const over = debt(bucket, rate, now) + cost * windowMs - burst * windowMs;
    return over <= 0 ? 0 : Math.ceil(over / rate);
  },

  stateOf(
    bucket: TokenBucket | undefined,
    limit: UnitLimit,
    burst: number,
    now: number,
  ): UnitState {
    const rate = limit.limit;
    // A rate of 0 never refills and admits nothing: no token is ever available, and what the
    // contract defines from D (it divides by L) does not apply; the window is its wait.
    if (rate === 0) return unitState(limit, 0, limit.windowMs);
    const windowMs = limit.windowMs;
    const d = debt(bucket, rate, now);
    return unitState(
      limit,
      Math.max(0, Math.floor((burst * windowMs - d) / windowMs)),
      Math.ceil(d / rate),
    );
  },

  admit(
    store: EntryStore<TokenBucket>,
    key: string,
    bucket: TokenBucket | undefined,
    limit: UnitLimit,
    burst: number,
    cost: number,
    now: number,
  ): UnitState {
    const rate = limit.limit;
    const windowMs = limit.windowMs;
    const d = debt(bucket, rate, now) + cost * windowMs;
    const untilFull = Math.ceil(d / rate);
    const end = now + untilFull;
    const remainder = untilFull * rate - d;
    if (bucket === undefined) {
      store.place(key, new TokenBucket(end, remainder, now), now);
    } else {
      bucket.end = end;
      bucket.remainder = remainder;
      if (now - bucket.placed >= windowMs) {
        bucket.placed = now;
        store.place(key, bucket, now);
      }
    }
    return unitState(limit, Math.max(0, Math.floor((burst * windowMs - d) / windowMs)), untilFull);
  },

  release(bucket: TokenBucket, limit: UnitLimit, cost: number, now: number): void {
    // The theoretical arrival time moves back by the cost's refill time, but never before now:
    // a bucket that is full again has nothing left to give back.
    const rate = limit.limit;
    const owed = debt(bucket, rate, now);
    if (owed === 0) return;
    const d = owed - cost * limit.windowMs;
    if (d <= 0) {
      bucket.end = now; // full: absent from now on
      bucket.remainder = 0;
      return;
    }
    const untilFull = Math.ceil(d / rate);
    bucket.end = now + untilFull;
    bucket.remainder = untilFull * rate - d;
  },

  expiresAt(bucket: TokenBucket): number {
    return bucket.end;
  },

  placedAt(bucket: TokenBucket): number {
    return bucket.placed;
  },
};
