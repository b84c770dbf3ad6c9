import type { OnApplicationBootstrap } from '@nestjs/common';
import calculateSlot from 'cluster-key-slot';
import {
  closestMatch,
  describeValue,
  optionFailure,
  rejectUnknownKeys,
  type FailOption,
} from '../../config-validation.js';
import {
  RATE_LIMIT_ALGORITHMS,
  RATE_LIMIT_UNITS,
  UNIT_WINDOW_SECONDS,
  type RateLimitAlgorithm,
  type UnitLimit,
} from '../../rules/rule-units.js';
import { checkBlockLength } from '../block-length.js';
import {
  RateLimitBackend,
  type ConsumeQuery,
  type ConsumeResult,
  type PeekResult,
  type RateLimitCounter,
} from '../rate-limit.backend.js';
import {
  BLOCK_SCRIPT,
  BLOCKED_FOR_SCRIPT,
  REDIS_ALGORITHMS,
  RESET_SCRIPT,
  UNBLOCK_SCRIPT,
  type RedisAlgorithm,
} from './redis-algorithms.js';
import { BLOCK_KEY_AT, ConsumeTemplates } from './redis-call-templates.js';
import type { RedisClientLike, RedisConnectionOptions } from './redis-client.js';
import { RedisConnection } from './redis-connection.js';
import {
  blockKey,
  blockKeyAt,
  counterPart,
  DEFAULT_KEY_PREFIX,
  nonStandardWindows,
  unitKey,
  unitKeyAt,
  unitName,
  userKeyStart,
} from './redis-keys.js';
import {
  parseConsumeReply,
  parseFlagReply,
  parseMsReply,
  parsePeekReply,
  type ReplyExpectations,
} from './redis-replies.js';
import { runScript, type ScriptCall, type ScriptVariants } from './redis-scripts.js';
import { ScriptBatcher } from './script-batcher.js';

/** Options of `RedisBackend` and `SlidingRedisBackend`. Every option is optional. */
export interface RedisBackendOptions {
  /**
   * How every query that names no algorithm (a rule without `algorithm`) is counted; see
   * `RateLimitAlgorithm` for what each one admits. Every algorithm is available to every rule.
   * @default 'fixed-window' ('sliding-log' for `SlidingRedisBackend`)
   */
  readonly algorithm?: RateLimitAlgorithm;
  /**
   * Start of every key the backend writes, so several applications (or environments) can share
   * one Redis. Must not be empty and must not contain `{` or `}` (the backend puts the user's
   * hash tag right after it; see redis-keys.ts for the layout).
   * @default 'rl:'
   */
  readonly prefix?: string;
  /**
   * Test hook: the time in milliseconds (fractions allowed) the scripts use INSTEAD of Redis's
   * clock (its `TIME`, and its key expiry for windows, buckets and blocks). Never set it in
   * production; without it, time always comes from Redis.
   *
   * Called once per script call, right before it is sent; the script decides at exactly that
   * instant (truncated to the millisecond, as `MemoryBackend` truncates its clock), so a test
   * moves time by changing what it returns, never by sleeping, and gets the same decisions and
   * waits every run. It must not go backwards. Keys then expire in that virtual time only (Redis
   * sees expiries centuries away): use it on a test Redis only, and see lua/test-clock.lua.
   * @default none (Redis's clock)
   */
  readonly testClock?: () => number;
}

/**
 * What a Redis backend talks to: an ioredis `Redis` or `Cluster` you created (it stays yours,
 * used as given: `close()` leaves it open), or a connection URL (`redis://host:6379/0`) or ioredis
 * options from which the backend creates, and later closes, its own client.
 */
export type RedisBackendClient = RedisClientLike | string | RedisConnectionOptions;

const KNOWN_OPTIONS: ReadonlySet<string> = new Set(['algorithm', 'prefix', 'testClock']);
const OPTION_HINTS: Readonly<Record<string, string>> = {
  strategy: 'algorithm',
  algorithms: 'algorithm',
  keyPrefix: 'prefix',
  namespace: 'prefix',
  timeOffsetMs: 'testClock',
  timeOffset: 'testClock',
  clockOffsetMs: 'testClock',
  clock: 'testClock',
};

/** Every algorithm, as the backend reports them. */
const ALL_ALGORITHMS: readonly RateLimitAlgorithm[] = Object.freeze([...RATE_LIMIT_ALGORITHMS]);

/**
 * Latest test-clock reading accepted, in ms: its microseconds must stay a safe integer in Lua's
 * doubles (about the year 2255 as a Unix time).
 */
const MAX_TEST_CLOCK_MS = Math.floor(Number.MAX_SAFE_INTEGER / 1000) - 1;

/** A unit's window, as far as its key's name is concerned. */
type UnitWindow = Pick<UnitLimit, 'unit' | 'windowMs'>;

/** Every unit with its standard window: what `reset()` always clears. */
const STANDARD_WINDOWS: readonly UnitWindow[] = RATE_LIMIT_UNITS.map((unit) => ({
  unit,
  windowMs: UNIT_WINDOW_SECONDS[unit] * 1000,
}));

/** Most non-standard windows remembered for `reset()`; only hand-built queries create them. */
const MAX_EXTRA_WINDOWS = 64;

/**
 * Rate limits in Redis (or Redis Cluster), shared by every process and host that uses the same
 * Redis and prefix, with every algorithm (see `RateLimitAlgorithm`): `'fixed-window'` by default
 * (the `algorithm` option), any of them per rule. Decides exactly like `MemoryBackend`: a rejected
 * request counts in no unit; a block belongs to the user, across every counter, and is not
 * extended by requests made while blocked.
 *
 * Each decision is one Lua script call (`EVALSHA`, reloaded transparently after `NOSCRIPT`) that
 * covers the block and every unit atomically. Time comes from Redis, never from the application
 * servers: most counters are keys that live exactly as long as what they count, so Redis's own
 * clock ends them and tells how long they have left. All keys of one call share the user's hash
 * tag, so they live in one slot of a Cluster, and no user id, scope or method can reach into
 * another counter's key. See `redis-keys.ts` for the layout and the memory each key costs, and
 * the scripts in `lua/` for the commands each decision runs.
 *
 * The decisions of one event-loop iteration for one algorithm and one hash slot go as one script
 * call (see script-batcher.ts), on its own client and on one you pass in alike; a decision alone
 * in its iteration is one call of its own. Releases (`count: 'failures' | 'successes'` rules) are
 * batched the same way; `peek`, `block`, `blockedFor`, `unblock` and `reset` are one script call
 * each.
 *
 * @example
 * new RedisBackend(new Redis({ enableOfflineQueue: false, maxRetriesPerRequest: 0 }))
 * new RedisBackend('redis://localhost:6379') // creates, and on close() quits, its own client
 * new RedisBackend('redis://localhost:6379', { algorithm: 'token-bucket' })
 */
export class RedisBackend extends RateLimitBackend implements OnApplicationBootstrap {
  /** Start of every key; validated (non-empty, no braces). */
  protected readonly prefix: string;
  private readonly name: string;
  private readonly defaultAlgorithm: RateLimitAlgorithm;
  private readonly connection: RedisConnection;
  private readonly testClock: (() => number) | undefined;
  /** Each algorithm's call templates, by algorithm. */
  private readonly templates = new Map<RateLimitAlgorithm, ConsumeTemplates>();
  /** Non-standard windows seen in this process, so `reset()` can name their keys. */
  private readonly extraWindows = new Map<string, UnitWindow>();
  /** Sends the consume calls of one event-loop iteration together (see script-batcher.ts). */
  private readonly batcher: ScriptBatcher;
  /** Script calls waiting for the first connection, in order (see {@link whenConnected}). */
  private waitingForReady: ((ready: RedisClientLike | Error) => void)[] | undefined;

  /**
   * @param client an ioredis `Redis` or `Cluster` (stays yours), or a URL / ioredis options from
   *   which the backend creates its own client (ioredis is loaded then)
   * @param options the default algorithm, key prefix and test hooks
   * @throws RateLimitConfigError (`RATE_LIMIT_INVALID_OPTION`) when an argument is invalid
   */
  constructor(client: RedisBackendClient, options?: RedisBackendOptions) {
    super();
    this.name = new.target.name;
    this.batcher = new ScriptBatcher(this.name);
    const fail: FailOption = optionFailure(this.name);

    // Checked because JavaScript callers (or `as` casts) can pass anything.
    const given: unknown = options ?? {};
    if (typeof given !== 'object' || given === null || Array.isArray(given)) {
      fail('options', `must be an object such as { prefix: 'rl:' }, got ${describeValue(given)}.`);
    }
    rejectUnknownKeys(given, KNOWN_OPTIONS, OPTION_HINTS, `a ${this.name} option`, fail);
    const fallback = this.fallbackAlgorithm();
    const { algorithm = fallback, prefix = DEFAULT_KEY_PREFIX, testClock } = options ?? {};
    if (!(RATE_LIMIT_ALGORITHMS as readonly unknown[]).includes(algorithm)) {
      const meant =
        typeof algorithm === 'string' ? closestMatch(algorithm, ALL_ALGORITHMS) : undefined;
      fail(
        'algorithm',
        `must be one of ${ALL_ALGORITHMS.map((name) => `'${name}'`).join(', ')}` +
          `${meant === undefined ? '' : `; did you mean '${meant}'?`} ` +
          `Leave it unset for the default, '${fallback}'. Got ${describeValue(algorithm)}.`,
      );
    }
    if (typeof prefix !== 'string' || prefix === '' || /[{}]/.test(prefix)) {
      fail(
        'prefix',
        `must be a non-empty string without "{" or "}" (the user's hash tag follows it), such ` +
          `as 'rl:' or 'myapp:rl:'; leave it unset for 'rl:'. Got ${describeValue(prefix)}.`,
      );
    }
    if (testClock !== undefined && typeof testClock !== 'function') {
      fail(
        'testClock',
        `must be a function returning the time in milliseconds for the scripts to use instead ` +
          `of Redis's clock (a test hook); leave it unset in production. ` +
          `Got ${describeValue(testClock)}.`,
      );
    }
    this.defaultAlgorithm = algorithm;
    this.prefix = prefix;
    this.testClock = testClock;
    for (const name of RATE_LIMIT_ALGORITHMS) {
      this.templates.set(name, new ConsumeTemplates(REDIS_ALGORITHMS[name]));
    }
    this.connection = new RedisConnection(this.name, client, fail);
  }

  /** The algorithm of queries that name none: the `algorithm` option. */
  override get algorithm(): RateLimitAlgorithm {
    return this.defaultAlgorithm;
  }

  /** All four: `'fixed-window'`, `'sliding-window'`, `'sliding-log'`, `'token-bucket'`. */
  override get algorithms(): readonly RateLimitAlgorithm[] {
    return ALL_ALGORITHMS;
  }

  /** The default of the `algorithm` option: `'fixed-window'` here. */
  protected fallbackAlgorithm(): RateLimitAlgorithm {
    return 'fixed-window';
  }

  /**
   * The ioredis client this backend uses: the one passed in, or its own once created (which
   * loads ioredis). Handy for health checks; do not close a client the backend owns yourself.
   */
  getClient(): Promise<RedisClientLike> {
    return this.connection.client();
  }

  /**
   * Names the backend and where it connects, without a password: `RedisBackend(redis://127.0.0.1:6379/0)`
   * for a URL, `RedisBackend(127.0.0.1:6379)` for options or a client passed in,
   * `SlidingRedisBackend(Redis Cluster)` for a Cluster.
   */
  /** The `testClock`, when set; Redis's own clock is nothing this process can read. */
  override localClock(): (() => number) | undefined {
    return this.testClock;
  }

  override describe(): string {
    return `${this.name}(${this.connection.address})`;
  }

  /**
   * Nest calls this while the application starts (the module's `RateLimitBackend` provider is
   * this backend). It starts the client's first connection if it has not started yet
   * (`lazyConnect`) and waits for it, at most 1 s, so that requests are decided from the first
   * one on. It logs one warning naming the address and the error when that connection fails (a
   * refused or unreachable address, a wrong password, a server that does not answer within 2 s),
   * rather than nothing until the first request; then, once, when it connects after all. Call it
   * yourself when using the backend outside Nest. Idempotent.
   *
   * @throws RateLimitConfigError when ioredis cannot use the URL or options given; Error when
   *   ioredis is not installed: both stop start-up, since the backend could never work
   */
  async onApplicationBootstrap(): Promise<void> {
    await this.connection.reportStartup(() => this.describe());
  }

  /** Decides one request in one script call. See `RateLimitBackend` for the contract. */
  override async consume(query: ConsumeQuery): Promise<ConsumeResult> {
    const algorithm = REDIS_ALGORITHMS[query.algorithm ?? this.defaultAlgorithm];
    const { limits, burst } = query;
    const cost = query.cost ?? 1;
    const start = userKeyStart(this.prefix, query.counter.user);
    const call = this.consumeCall(algorithm, query, start, query.blockMs, cost);
    const reply = await this.submit(algorithm.consume, algorithm.consumeBatch, call, start);
    return parseConsumeReply(
      this.name,
      reply,
      limits,
      expectedReply(algorithm, limits, burst, cost),
    );
  }

  /**
   * Every unit of the query's counter as it stands, and the user's block, in one script call:
   * the algorithm's consume script itself, asked to decide a request that no unit can hold and
   * that starts no block (lua/peek.lua), so each unit is exactly what a rejected request sees.
   * Counts nothing (a sliding log may drop entries that left their window, as any decision does).
   * See `RateLimitBackend.peek`.
   */
  override async peek(query: ConsumeQuery): Promise<PeekResult> {
    const algorithm = REDIS_ALGORITHMS[query.algorithm ?? this.defaultAlgorithm];
    const { limits, burst, counter } = query;
    if (limits.length === 0) return { blockedMs: await this.blockedFor(counter.user), units: [] };
    let cost = 1;
    for (const limit of limits) cost = Math.max(cost, algorithm.holds(limit, burst) + 1);
    const start = userKeyStart(this.prefix, counter.user);
    const reply = await this.run(
      algorithm.peek,
      this.consumeCall(algorithm, query, start, 0, cost),
    );
    return parsePeekReply(this.name, reply, limits, expectedReply(algorithm, limits, burst, cost));
  }

  /**
   * Gives back `query.cost` (default 1) in every unit of the query's counter, in one script call
   * (lua/release-<algorithm>.lua), never below zero; a unit whose window has ended gives back
   * nothing. Releases of one event-loop iteration for one algorithm and hash slot go as one call,
   * as decisions do. See `RateLimitBackend.release`, and each script for its algorithm.
   */
  override async release(query: ConsumeQuery): Promise<void> {
    const algorithm = REDIS_ALGORITHMS[query.algorithm ?? this.defaultAlgorithm];
    // A limit of 0 admitted nothing under this query; another rule's count is not its to give.
    const limits = query.limits.filter((limit) => limit.limit > 0);
    if (limits.length === 0) return;
    const start = userKeyStart(this.prefix, query.counter.user);
    const part = counterPart(query.counter);
    const call: ScriptCall = ['', limits.length];
    for (const limit of limits) {
      call.push(unitKeyAt(start, algorithm.keyKind, part, unitName(limit)));
    }
    call.push(query.cost ?? 1, ...algorithm.releaseArgs(limits));
    const reply = await this.submit(algorithm.release, algorithm.releaseBatch, call, start);
    parseFlagReply(this.name, reply);
  }

  /**
   * Blocks the user on every counter for `ms` from now (one script call), replacing any block, a
   * longer one too: the user's block key, exactly as a rule's `blockTime` sets it.
   * @param ms a whole number of milliseconds, at least 1
   * @throws RangeError when `ms` is not one (before any call to Redis)
   */
  override async block(user: string, ms: number): Promise<void> {
    checkBlockLength(this.name, ms);
    parseFlagReply(
      this.name,
      await this.run(BLOCK_SCRIPT, ['', 1, blockKey(this.prefix, user), ms]),
    );
  }

  /**
   * How long the user stays blocked (one script call, on the clock the decisions use).
   * @returns the milliseconds of block left, 0 when the user is not blocked
   */
  override async blockedFor(user: string): Promise<number> {
    const reply = await this.run(BLOCKED_FOR_SCRIPT, ['', 1, blockKey(this.prefix, user)]);
    return parseMsReply(this.name, reply);
  }

  /**
   * A consume script's call for `query`: its template, with the user's block key and unit keys
   * (from `start`, the user's {@link userKeyStart}), `blockMs` and `cost` filled in.
   */
  private consumeCall(
    algorithm: RedisAlgorithm,
    query: ConsumeQuery,
    start: string,
    blockMs: number,
    cost: number,
  ): ScriptCall {
    const template = this.templates.get(algorithm.algorithm)!.get(query.limits, query.burst);
    const { names } = template;
    const call = template.call.slice();
    const part = counterPart(query.counter);
    call[BLOCK_KEY_AT] = blockKeyAt(start);
    for (let i = 0; i < names.length; i++) {
      call[BLOCK_KEY_AT + 1 + i] = unitKeyAt(start, algorithm.keyKind, part, names[i]!);
    }
    call[BLOCK_KEY_AT + names.length + 1] = blockMs > 0 ? Math.ceil(blockMs) : 0;
    call[BLOCK_KEY_AT + names.length + 2] = cost;
    if (template.extra.length > 0) this.rememberWindows(template.extra);
    return call;
  }

  /**
   * Notes the units whose window is not their unit's standard one (a rule's custom `window`), so
   * that {@link reset} covers their keys from start-up on, before a request of the rule was
   * decided here. The module calls it for every rule; call it yourself outside Nest.
   */
  override knowUnits(limits: readonly UnitLimit[]): void {
    this.rememberWindows(nonStandardWindows(limits));
  }

  /**
   * Lifts the user's block (one script call).
   * @returns whether a block was still active
   */
  override async unblock(user: string): Promise<boolean> {
    const reply = await this.run(UNBLOCK_SCRIPT, ['', 1, blockKey(this.prefix, user)]);
    return parseFlagReply(this.name, reply);
  }

  /**
   * Forgets one counter in every unit and with every algorithm (one script call). The user's
   * block, if any, stays. Covers the standard window of every unit and any other window length
   * this process has used (a rule's custom `window`, or a hand-built query).
   * @returns whether anything still counted in any of them
   */
  override async reset(counter: RateLimitCounter): Promise<boolean> {
    const windows = [...STANDARD_WINDOWS, ...this.extraWindows.values()];
    const expiring: string[] = [];
    const logs: string[] = [];
    const logWindows: number[] = [];
    for (const algorithm of Object.values(REDIS_ALGORITHMS) as RedisAlgorithm[]) {
      for (const window of windows) {
        const key = unitKey(this.prefix, counter, algorithm.algorithm, window);
        if (algorithm.expiring) {
          expiring.push(key);
        } else {
          logs.push(key);
          logWindows.push(window.windowMs);
        }
      }
    }
    const call: ScriptCall = ['', expiring.length + logs.length, ...expiring, ...logs];
    call.push(expiring.length, ...logWindows);
    return parseFlagReply(this.name, await this.run(RESET_SCRIPT, call));
  }

  /**
   * On a Redis Cluster, the hash slot of the user's keys (every key of one user shares the user's
   * hash tag, so one slot, so one node): a dead master then only sends the requests of the users
   * it holds to the failure policy. On a single node, `''`: the backend fails as a whole.
   */
  override partitionOf(user: string): string {
    return this.connection.clustered
      ? `hash slot ${calculateSlot(userKeyStart(this.prefix, user))}`
      : '';
  }

  /**
   * Closes the client the backend created itself: `QUIT` when connected, so pending replies
   * arrive first, but waiting at most 500 ms for the server's answer, then dropping the
   * connection; it resolves within about a second even when Redis does not answer at all. A
   * client you passed in is left untouched (close it yourself), and this resolves at once.
   * Idempotent.
   */
  override async close(): Promise<void> {
    await this.connection.close();
  }

  /**
   * Runs one script call on the client, once its first connection settled (the usual case:
   * nothing to wait for), in the variant of the clock in use: under the test clock, its reading
   * goes last, where the test-clock prelude takes it from.
   */
  private run(variants: ScriptVariants, call: ScriptCall): Promise<unknown> {
    return this.whenConnected((client) => {
      if (this.testClock === undefined) return runScript(client, variants.redisClock, call);
      call.push(this.testClockUs());
      return runScript(client, variants.testClock, call);
    });
  }

  /**
   * {@link run} for a call that may be batched (a consume or a release), through the batcher:
   * the calls of one event-loop iteration for one script and one hash slot go as one script call
   * of `batch`. `keyStart` is the start of the user's keys, whose hash tag gives the slot.
   */
  private submit(
    single: ScriptVariants,
    batch: ScriptVariants,
    call: ScriptCall,
    keyStart: string,
  ): Promise<unknown> {
    return this.whenConnected((client) => {
      const test = this.testClock !== undefined;
      if (test) call.push(this.testClockUs());
      const slot = this.connection.clustered ? calculateSlot(keyStart) : 0;
      return test
        ? this.batcher.submit(client, single.testClock, batch.testClock, call, slot)
        : this.batcher.submit(client, single.redisClock, batch.redisClock, call, slot);
    });
  }

  /**
   * `send(client)` at once when the first connection has settled (the usual case); before that,
   * queued and sent in the order the calls were made once it has, so that a call made meanwhile
   * never overtakes an earlier one. `send` may throw (a bad test-clock reading): that call
   * fails, the others go on.
   */
  private whenConnected(send: (client: RedisClientLike) => Promise<unknown>): Promise<unknown> {
    const client = this.connection.ready();
    if (client !== undefined && this.waitingForReady === undefined) return send(client);
    return new Promise((resolve, reject) => {
      const waiting = (this.waitingForReady ??= []);
      waiting.push((ready) => {
        if (ready instanceof Error) return reject(ready);
        try {
          send(ready).then(resolve, reject);
        } catch (error) {
          reject(error);
        }
      });
      if (waiting.length === 1) {
        const release = (ready: RedisClientLike | Error): void => {
          this.waitingForReady = undefined;
          for (const next of waiting) next(ready);
        };
        this.connection
          .whenReady()
          .then(release, (error: unknown) =>
            release(error instanceof Error ? error : new Error(String(error))),
          );
      }
    });
  }

  /**
   * Notes the units among `extra` (those whose window is not their unit's standard one), so that
   * `reset()` covers their keys too.
   */
  private rememberWindows(extra: readonly UnitLimit[]): void {
    for (const limit of extra) {
      const name = unitName(limit);
      if (this.extraWindows.has(name) || this.extraWindows.size >= MAX_EXTRA_WINDOWS) continue;
      this.extraWindows.set(name, { unit: limit.unit, windowMs: limit.windowMs });
    }
  }

  /**
   * The test clock's reading in whole microseconds, split so that the millisecond is exactly
   * `Math.floor(reading)`, as `MemoryBackend` truncates its clock (multiplying first could round
   * up into the next one).
   */
  private testClockUs(): string {
    const ms: unknown = this.testClock!();
    if (typeof ms !== 'number' || !(ms >= 0 && ms <= MAX_TEST_CLOCK_MS)) {
      throw new Error(
        `${this.name}: testClock() must return a time in milliseconds from 0 to ` +
          `${MAX_TEST_CLOCK_MS}, got ${describeValue(ms)}`,
      );
    }
    const whole = Math.floor(ms);
    const micros = Math.min(999, Math.floor((ms - whole) * 1000));
    return String(whole * 1000 + micros);
  }
}

/** What a decision's reply must hold for a request of `cost` under `algorithm`. */
function expectedReply(
  algorithm: RedisAlgorithm,
  limits: readonly UnitLimit[],
  burst: number | undefined,
  cost: number,
): ReplyExpectations {
  return {
    cost,
    capacity: algorithm.capacity(burst, limits),
    resetWithinWait: algorithm.resetWithinWait,
  };
}
