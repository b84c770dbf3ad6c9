import type { RateLimitAlgorithm, RateLimitUnitName, UnitLimit } from '../rules/rule-units.js';

/**
 * Names one pool of counters: one user, one scope, one rule method. A backend keeps one counter per
 * unit of the rule under it, and must encode the three parts so that no value of one part can
 * collide with another counter (for example with length prefixes or escaping).
 */
export interface RateLimitCounter {
  /** The caller, as the auth resolver identified it. Never trusted to be well-formed. */
  readonly user: string;
  /**
   * What the counter is for, with its kind first: `zone:<zone>`, `path:<decoded request path>` or
   * `handler:<Controller>.<method>`. The kind prefix keeps a zone and a path of the same text apart.
   */
  readonly scope: string;
  /** The rule's method as written (`'*'` shares one counter across methods). */
  readonly method: string;
}

/** One request to count: every unit of the rule, and the block it may start. */
export interface ConsumeQuery {
  readonly counter: RateLimitCounter;
  /** The rule's units; never empty (unlimited rules never reach the backend). */
  readonly limits: readonly UnitLimit[];
  /** How long to block the user once a unit is exceeded, in ms; 0 for no block. */
  readonly blockMs: number;
  /**
   * How to count every unit of the rule (see {@link RateLimitAlgorithm}); undefined: the backend's
   * own {@link RateLimitBackend.algorithm}. Always one of the backend's
   * {@link RateLimitBackend.algorithms}: the module checks every rule against them at start-up.
   */
  readonly algorithm?: RateLimitAlgorithm;
  /**
   * Token bucket only: the bucket's size in tokens, a whole number of at least 1; undefined: each
   * unit's `limit`.
   */
  readonly burst?: number;
  /** What this request takes from every unit, a whole number of at least 1; undefined: 1. */
  readonly cost?: number;
}

/** The state of one unit after a decision. */
export interface UnitState extends UnitLimit {
  /** Requests still admitted in the current window after this one (0 or more). */
  readonly remaining: number;
  /** Milliseconds until the window frees capacity again (for a fresh window: its full length). */
  readonly resetMs: number;
}

/** What a backend decided for one {@link ConsumeQuery}. */
export interface ConsumeResult {
  /** True when the request was admitted and counted in every unit. */
  readonly allowed: boolean;
  /**
   * When rejected: milliseconds until a request would really be admitted, the longest of the
   * user's block (what is left of it, or the whole block this request started) and the wait of
   * every exhausted unit of this request's rule. So a client that waits that long never comes
   * back to an exhausted unit that blocks it again. 0 when allowed.
   */
  readonly retryAfterMs: number;
  /** True when rejected because the user is blocked, by an earlier block or one this request started. */
  readonly blocked: boolean;
  /**
   * When rejected: the exhausted unit with the longest wait, during a block too; undefined when no
   * unit is exhausted (a block alone rejected the request) and when allowed.
   */
  readonly unit: RateLimitUnitName | undefined;
  /**
   * Each unit of the rule, in rule order: after counting when admitted, as it stands (nothing
   * counted) when rejected, during a block too.
   */
  readonly units: readonly UnitState[];
}

/** A counter's state as it stands, without counting anything: what {@link RateLimitBackend.peek} gives. */
export interface PeekResult {
  /** Milliseconds left of the user's block (on every counter of the user); 0 when not blocked. */
  readonly blockedMs: number;
  /**
   * Each unit of the query's rule, in rule order, as it stands: exactly what a {@link consume}
   * rejected at this instant reports for it (`remaining`: how many requests of cost 1 would still
   * be admitted now, block aside; `resetMs` as the algorithm defines it). A counter that has never
   * been used (or was reset) shows every unit full: `remaining` is the limit (the `burst` for a
   * token bucket), `resetMs` the whole window for a fixed window and a sliding log, what is left
   * of the aligned window for a sliding window, and 0 for a full token bucket.
   */
  readonly units: readonly UnitState[];
}

const FIXED_WINDOW_ONLY: readonly RateLimitAlgorithm[] = Object.freeze(['fixed-window'] as const);

/**
 * Where counters live, and the one atomic step that decides a request.
 *
 * The abstract class is also the DI token: inject `RateLimitBackend` to reset users from an admin
 * endpoint, or extend it to write your own store. A backend must, in one atomic step per
 * {@link consume} call:
 *
 * 1. check every unit with the query's algorithm (see {@link RateLimitAlgorithm}; a fixed window
 *    starts with the first request after the previous one ended); a unit where the request's
 *    `cost` does not fit (or with a limit of 0) is exhausted;
 * 2. when the user is blocked (from any counter): count nothing, leave the block as it is (neither
 *    extended nor restarted), and reject with the longer of the block's remaining time and the
 *    longest wait among the exhausted units, reporting the units;
 * 3. otherwise, when any unit is exhausted: count nothing, start the block when `blockMs > 0`, and
 *    reject with the longest wait (the block's length when that is longer); else count the
 *    request's cost in every unit and admit it.
 *
 * Rejected requests never consume anything, so a client that keeps retrying does not extend its
 * own wait; and `retryAfterMs` is the time until a request would really be admitted, so a client
 * that obeys it is admitted, never blocked again.
 */
export abstract class RateLimitBackend {
  /**
   * The algorithm of every query that names none (a rule without `algorithm`). A backend that
   * counts fixed windows only, as one written before algorithms existed, keeps the default.
   */
  get algorithm(): RateLimitAlgorithm {
    return 'fixed-window';
  }

  /**
   * Every algorithm {@link consume} implements. The module fails at start-up, naming the rule,
   * when a rule asks its backend for another one. Default: `['fixed-window']`.
   */
  get algorithms(): readonly RateLimitAlgorithm[] {
    return FIXED_WINDOW_ONLY;
  }

  /** Decides one request and counts it when admitted. See the class description for the contract. */
  abstract consume(query: ConsumeQuery): ConsumeResult | Promise<ConsumeResult>;

  /** Lifts the user's block. Resolves to whether a block was active. */
  abstract unblock(user: string): boolean | Promise<boolean>;

  /** Forgets every unit of one counter, as if the user had never called. Resolves to whether any existed. */
  abstract reset(counter: RateLimitCounter): boolean | Promise<boolean>;

  /**
   * The state of every unit of `query`'s counter, and the user's block, without counting anything
   * or starting a block (for `RateLimitAdmin.peek`): a peek between two decisions changes neither.
   * `query.cost` and `query.blockMs` are ignored; `algorithm` and `burst` are read as by
   * {@link consume}. See {@link PeekResult}.
   * The default throws: a backend written before this method existed cannot peek.
   */
  peek(_query: ConsumeQuery): PeekResult | Promise<PeekResult> {
    throw new Error(notImplemented(this, 'peek'));
  }

  /**
   * Gives back what an admitted {@link consume} of the same query counted (`query.cost`, default
   * 1, in every unit with a limit above 0), for a rule that counts only some responses
   * (`count: 'failures' | 'successes'`): the module consumes every such request when it arrives
   * and releases it once its response shows it does not count. Atomic over every unit, never
   * below zero, starts and lifts no block, and a unit whose state shows that the window the
   * request was counted in has ended gives back nothing (its capacity came back when it ended).
   * Per algorithm:
   *
   * - `'fixed-window'`: the running window's count goes down by the cost; the window keeps its
   *   end. No running window: nothing.
   * - `'sliding-window'`: the cost comes off the last aligned window the counter counted a
   *   request in, while that window still weighs (it is the current or the previous one).
   * - `'sliding-log'`: the newest `cost` entries that still count are removed.
   * - `'token-bucket'`: the theoretical arrival time moves back by the cost's refill time
   *   (`cost × W / L`), but never before now (a full bucket stays full).
   *
   * What no state tells: the counters keep no time per request. So when a later request was
   * counted after this one, the cost may come off what that request counted instead: the fixed
   * window's new window and the sliding window's current one (when this request's window ended
   * before the release), the log's newest entries (the later request's: capacity then comes back
   * at most the time between the two requests sooner), a bucket's debt (when the bucket would
   * have been full again in between without this request). Each frees at most the cost, once;
   * releasing as soon as the response is known keeps it to responses slower than what was left
   * of their window (for a bucket: than the cost's refill time), and to users with concurrent
   * requests on a log.
   * The default throws: a backend written before this method existed cannot release.
   */
  release(_query: ConsumeQuery): void | Promise<void> {
    throw new Error(notImplemented(this, 'release'));
  }

  /**
   * Blocks `user` on every counter for `ms` milliseconds from now, replacing any block in place
   * (a longer one too): exactly the block a rule's `blockTime` starts, so {@link consume} then
   * rejects the user with `blocked: true` and a wait of at least what is left of it, and
   * {@link unblock} lifts it. `ms` is a whole number of at least 1; the built-in backends throw a
   * `RangeError` for anything else.
   * The default throws: a backend written before this method existed cannot block by hand.
   */
  block(_user: string, _ms: number): void | Promise<void> {
    throw new Error(notImplemented(this, 'block'));
  }

  /**
   * Milliseconds left of `user`'s block (one started by a rule's `blockTime` or by
   * {@link block}), on the clock the decisions use; 0 when the user is not blocked.
   * The default throws: a backend written before this method existed cannot tell.
   */
  blockedFor(_user: string): number | Promise<number> {
    throw new Error(notImplemented(this, 'blockedFor'));
  }

  /**
   * Which part of the store holds `user`'s counters and block, for a store whose parts fail on
   * their own (a Redis Cluster: one hash slot, as every key of a user shares the user's hash tag).
   * The failure policy keeps its state per part, so a dead node only sends the requests that need
   * it to the failure policy, while the users of healthy nodes are still limited.
   *
   * Return a short, readable label (it appears in the outage warning); the set of labels must be
   * small and bounded, as the failure policy keeps one entry per failing part. The default, `''`,
   * is a store that fails as a whole.
   * @param _user the caller, as in `RateLimitCounter.user`
   */
  partitionOf(_user: string): string {
    return '';
  }

  /**
   * Called by the module at start-up with the units of every rule it will decide (once per rule),
   * before the first request. A store that keys counters by window length (a rule's custom
   * `window`) can note those lengths here, so that {@link reset} finds their counters even in a
   * process that has not decided a request of that rule yet, such as an admin endpoint on a
   * freshly started instance. The default does nothing: a store that finds a counter's units
   * without knowing their windows needs nothing more.
   * @param _limits one rule's units, as later given in `ConsumeQuery.limits`
   */
  knowUnits(_limits: readonly UnitLimit[]): void {}

  /**
   * The clock this backend decides by, when it is one this process reads: a `MemoryBackend`'s
   * `clock`, a Redis backend's `testClock`. The module's `localRejectCache` then measures how
   * long a rejection stands on the same clock, so virtual time in tests moves both together.
   * Undefined (the default) when the time comes from elsewhere, such as Redis's own `TIME`: the
   * cache then uses `performance.now()`, since only durations matter to it.
   */
  localClock(): (() => number) | undefined {
    return undefined;
  }

  /**
   * Releases what the backend itself owns (timers, connections it opened). Called when the Nest
   * application shuts down. Never closes a client the user passed in.
   */
  close(): void | Promise<void> {}

  /**
   * A short description of this backend for log lines, so that a warning can say which backend,
   * and which server, failed: `RedisBackend(redis://127.0.0.1:6379)`. The class name by default;
   * a backend of yours may add what tells its instances apart, but never a secret.
   */
  describe(): string {
    return this.constructor.name;
  }
}

/** The error of a method a backend of the user's does not implement. */
function notImplemented(backend: RateLimitBackend, method: string): string {
  return (
    `${backend.describe()} does not implement ${method}(), which RateLimitAdmin and ` +
    `count: 'failures' | 'successes' rules need: implement it (see RateLimitBackend.${method}) ` +
    `or use MemoryBackend / RedisBackend.`
  );
}
