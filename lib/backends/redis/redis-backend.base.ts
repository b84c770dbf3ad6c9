import { Logger, type OnApplicationBootstrap } from '@nestjs/common';
import calculateSlot from 'cluster-key-slot';
import { createHash } from 'node:crypto';
import {
  describeValue,
  optionFailure,
  rejectUnknownKeys,
  type FailOption,
} from '../../config-validation.js';
import { RATE_LIMIT_UNITS, UNIT_WINDOW_SECONDS, type UnitLimit } from '../../rules/rule-units.js';
import {
  RateLimitBackend,
  type ConsumeQuery,
  type ConsumeResult,
  type UnitState,
} from '../rate-limit.backend.js';
import { watchFirstConnection } from './first-connection.js';
import { describeClient, describeSource } from './redis-address.js';
import {
  createOwnClient,
  OWN_CLIENT_CONNECT_TIMEOUT_MS,
  type RedisClientLike,
  type RedisConnectionOptions,
} from './redis-client.js';
import {
  blockKey,
  blockKeyAt,
  counterPart,
  DEFAULT_KEY_PREFIX,
  nonStandardWindows,
  unitName,
  userKeyStart,
} from './redis-keys.js';
import { UNBLOCK_LUA } from './shared.lua.js';

/** Options of `RedisBackend` and `SlidingRedisBackend`. Every option is optional. */
export interface RedisBackendOptions {
  /**
   * Start of every key the backend writes, so several applications (or environments) can share
   * one Redis. Must not be empty and must not contain `{` or `}` (the backend puts the user's
   * hash tag right after it; see redis-keys.ts for the layout).
   * @default 'rl:'
   */
  readonly prefix?: string;
  /**
   * Test hook: the time in milliseconds (fractions allowed) the scripts use INSTEAD of Redis's
   * clock (its `TIME`, and its key expiry for windows and blocks). Never set it in production;
   * without it, time always comes from Redis.
   *
   * Called once per script call, right before it is sent; the script decides at exactly that
   * instant (truncated to the millisecond, as `MemoryBackend` truncates its clock), so a test
   * moves time by changing what it returns, never by sleeping, and gets the same decisions and
   * waits every run. It must not go backwards. Windows and blocks then expire in that virtual
   * time only (Redis sees expiries centuries away) and sliding logs never: use it on a test Redis
   * only, and see shared.lua.ts.
   * @default none (Redis's clock)
   */
  readonly testClock?: () => number;
}

/**
 * What a Redis backend talks to: an ioredis `Redis` or `Cluster` you created (it stays yours:
 * `close()` leaves it open), or a connection URL (`redis://host:6379/0`) or ioredis options from
 * which the backend creates, and later closes, its own client.
 */
export type RedisBackendClient = RedisClientLike | string | RedisConnectionOptions;

/**
 * A Lua script the backends run. Redis caches scripts by the SHA1 of their text, which is also how
 * `EVALSHA` names them, so two versions of this package sharing a Redis each run their own.
 */
export interface ScriptDefinition {
  readonly lua: string;
  /** SHA1 of `lua`, in hex. */
  readonly sha: string;
}

/** A script and its SHA1, computed once when the module loads. */
export function defineScript(lua: string): ScriptDefinition {
  return { lua, sha: createHash('sha1').update(lua).digest('hex') };
}

/**
 * Where a script call's first key goes in its arguments: they are the command (`evalsha`, or
 * `eval` after `NOSCRIPT`), the SHA1 (or the script), the number of keys, the keys, the clock slot
 * (see {@link RedisBackendBase.send}), then the script's own arguments.
 */
export const SCRIPT_FIRST_KEY = 3;

/** The start of a script call's arguments, up to its first key. */
export function scriptArgv(script: ScriptDefinition, keys: number): (string | number)[] {
  return ['evalsha', script.sha, keys];
}

/**
 * What a consume call needs for one `limits`, computed once per array (see {@link UnitArgsCache}).
 * Both consume scripts take the user's block key first, then one key per unit, then the clock,
 * the block's length and their own per-unit arguments.
 */
export interface ConsumeTemplate {
  /**
   * The call's arguments with the per-request slots (keys, clock, block) left empty: the script
   * and 1 + n keys, the keys (the block, then one per unit), the clock, the block, then the
   * script's per-unit arguments.
   */
  readonly argv: readonly (string | number)[];
  /** Each unit's name, for its key. */
  readonly names: readonly string[];
  /** The units whose window is not their standard one (hand-built queries), for `reset()`. */
  readonly extra: readonly UnitLimit[];
}

/** A {@link ConsumeTemplate} for `script`, whose per-unit arguments for `limits` are `unitArgs`. */
export function consumeTemplate(
  script: ScriptDefinition,
  limits: readonly UnitLimit[],
  unitArgs: readonly (string | number)[],
): ConsumeTemplate {
  const argv = scriptArgv(script, 1 + limits.length);
  for (let i = 0; i <= limits.length; i++) argv.push(''); // the keys
  argv.push('', 0, ...unitArgs);
  return { argv, names: limits.map(unitName), extra: nonStandardWindows(limits) };
}

/** Where a consume call's block key goes; the units' keys follow it. */
const CONSUME_BLOCK_KEY = SCRIPT_FIRST_KEY;

const KNOWN_OPTIONS: ReadonlySet<string> = new Set(['prefix', 'testClock']);
const OPTION_HINTS: Readonly<Record<string, string>> = {
  keyPrefix: 'prefix',
  namespace: 'prefix',
  timeOffsetMs: 'testClock',
  timeOffset: 'testClock',
  clockOffsetMs: 'testClock',
  clock: 'testClock',
};

/**
 * Latest test-clock reading accepted, in ms: its microseconds must stay a safe integer in Lua's
 * doubles (about the year 2255 as a Unix time).
 */
const MAX_TEST_CLOCK_MS = Math.floor(Number.MAX_SAFE_INTEGER / 1000) - 1;

const UNBLOCK_SCRIPT = defineScript(UNBLOCK_LUA);

/**
 * How long after start-up a client may still be without a ready connection, and no error, before
 * the start-up report says so: longer than the own client's connect timeout (1 s), after which a
 * refused or unroutable address has already reported its error.
 */
const STARTUP_READY_TIMEOUT_MS = 2_000;

/** Statuses in which a client is still making its first connection. */
const CONNECTING = new Set(['wait', 'connecting', 'connect']);

/** Clients already warned about their offline queue: one warning per client, not per backend. */
const warnedClients = new WeakSet<object>();

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
 * Longest `close()` waits for the server's reply to `QUIT` before it drops the connection: a server
 * that stopped answering while the TCP connection stays open (a hung process, a partition, a
 * proxy that lost its upstream) never replies, and shutdown must not wait for it.
 */
const QUIT_TIMEOUT_MS = 500;

/** Longest `close()` waits for the client to end after `QUIT` or a disconnect. */
const CLOSE_TIMEOUT_MS = 1_000;

/** Resolves whether `promise` settled within `timeoutMs` (an unref'd timer); never rejects. */
function settlesWithin(promise: Promise<unknown>, timeoutMs: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    timer.unref();
    const settled = (): void => {
      clearTimeout(timer);
      resolve(true);
    };
    promise.then(settled, settled);
  });
}

/** Resolves on the first of `events`, or after `timeoutMs` (an unref'd timer), whichever is first. */
function waitForEvent(
  client: RedisClientLike,
  events: readonly string[],
  timeoutMs: number,
): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      for (const event of events) client.removeListener(event, done);
      resolve();
    };
    const timer = setTimeout(done, timeoutMs);
    timer.unref();
    for (const event of events) client.on(event, done);
  });
}

/** An ioredis client: `defineCommand` is ioredis's own, `call` what the backends send with. */
function isClient(value: unknown): value is RedisClientLike {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof Reflect.get(value, 'defineCommand') === 'function' &&
    typeof Reflect.get(value, 'call') === 'function'
  );
}

/** Redis's answer to `EVALSHA` when it does not have the script (a restart, `SCRIPT FLUSH`). */
function isNoScript(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith('NOSCRIPT');
}

/** An ioredis `Cluster`: `nodes()` is its documented method, which a single-node `Redis` lacks. */
function isClusterClient(client: RedisClientLike): boolean {
  return typeof Reflect.get(client, 'nodes') === 'function';
}

/** Something with client-like methods but no `defineCommand` (node-redis, a wrapper...). */
function looksLikeOtherClient(value: object): boolean {
  return ['sendCommand', 'quit', 'on', 'call'].some(
    (method) => typeof Reflect.get(value, method) === 'function',
  );
}

/** Thrown when a script's reply is not what the script returns; the failure policy handles it. */
function malformed(backend: string, reply: unknown): Error {
  let shown: string;
  try {
    shown = JSON.stringify(reply)?.slice(0, 200) ?? String(reply);
  } catch {
    shown = typeof reply;
  }
  return new Error(`${backend}: unexpected reply from the rate-limit script: ${shown}`);
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function isFlag(value: unknown): value is 0 | 1 {
  return value === 0 || value === 1;
}

/**
 * An admitted request's reply under one unit, packed by the script into `resetMs * (limit + 1) +
 * remaining` (see `luaAdmittedReturn` in shared.lua.ts).
 */
function parsePackedReply(
  backend: string,
  reply: number,
  limits: readonly UnitLimit[],
): ConsumeResult {
  const limit = limits.length === 1 ? limits[0]! : undefined;
  if (limit === undefined || !isCount(reply) || !isCount(limit.limit)) {
    throw malformed(backend, reply);
  }
  const base = limit.limit + 1; // as the script packed it
  const remaining = reply % base;
  const units: UnitState[] = [
    {
      unit: limit.unit,
      limit: limit.limit,
      windowMs: limit.windowMs,
      remaining,
      resetMs: (reply - remaining) / base,
    },
  ];
  return { allowed: true, retryAfterMs: 0, blocked: false, unit: undefined, units };
}

/**
 * Turns a consume script's reply (`{allowed, retryAfterMs, blocked, unit index, then remaining
 * and resetMs per unit}`, or one integer for an admitted request under one unit) into a
 * {@link ConsumeResult}, checking every value.
 *
 * Besides each value's type, the parts must agree: an admitted request has no wait, no block and
 * no unit; a rejected one has a wait, and names the exhausted unit with the longest wait (none
 * left, and a reset within the wait) unless no unit is exhausted, which only a running block can
 * reject (then every unit has requests left).
 *
 * @throws Error when the reply does not have that shape
 */
export function parseConsumeReply(
  backend: string,
  reply: unknown,
  limits: readonly UnitLimit[],
): ConsumeResult {
  if (typeof reply === 'number') return parsePackedReply(backend, reply, limits);
  const n = limits.length;
  if (!Array.isArray(reply) || reply.length !== 4 + 2 * n) throw malformed(backend, reply);
  const values: unknown[] = reply;
  // Indexed reads, not destructuring: this runs on every decision.
  const allowed = values[0];
  const retryAfterMs = values[1];
  const blocked = values[2];
  const unitIndex = values[3];
  if (!isFlag(allowed) || !isCount(retryAfterMs) || !isFlag(blocked) || !isCount(unitIndex)) {
    throw malformed(backend, reply);
  }
  const consistent =
    allowed === 1
      ? retryAfterMs === 0 && blocked === 0 && unitIndex === 0
      : retryAfterMs > 0 && unitIndex <= n && (unitIndex >= 1 || blocked === 1);
  if (!consistent) throw malformed(backend, reply);
  const units = new Array<UnitState>(n);
  let noneLeft = false; // some unit has no request left: exhausted, on a rejection
  for (let i = 0; i < n; i++) {
    const remaining = values[4 + 2 * i];
    const resetMs = values[5 + 2 * i];
    if (!isCount(remaining) || !isCount(resetMs)) throw malformed(backend, reply);
    if (remaining === 0) noneLeft = true;
    const limit = limits[i]!;
    units[i] = {
      unit: limit.unit,
      limit: limit.limit,
      windowMs: limit.windowMs,
      remaining,
      resetMs,
    };
  }
  if (allowed === 1) {
    return { allowed: true, retryAfterMs: 0, blocked: false, unit: undefined, units };
  }
  const named = unitIndex === 0 ? undefined : units[unitIndex - 1]!;
  if (named === undefined ? noneLeft : named.remaining !== 0 || named.resetMs > retryAfterMs) {
    throw malformed(backend, reply);
  }
  return { allowed: false, retryAfterMs, blocked: blocked === 1, unit: named?.unit, units };
}

/**
 * Turns the reply of an unblock or reset script (`0` or `1`) into a boolean.
 *
 * @throws Error when the reply is anything else
 */
export function parseFlagReply(backend: string, reply: unknown): boolean {
  if (!isFlag(reply)) throw malformed(backend, reply);
  return reply === 1;
}

/**
 * An argument as ioredis would send it (its `toArg`: nothing for `null` or `undefined`, integers
 * beyond 2^53 in full rather than in exponent form), so that the backends can convert a rule's
 * arguments once instead of ioredis converting them on every call.
 */
export function redisArg(value: unknown): string {
  if (value === null || value === undefined) return '';
  return typeof value === 'number' && Number.isInteger(value) && !Number.isSafeInteger(value)
    ? BigInt(value).toString()
    : String(value);
}

/**
 * What a backend derives from one `limits` array (its script arguments), computed once per array
 * rather than on every decision: a rule's `limits` is one array for the rule's life, so its
 * decisions all hit. Checked against the units on every hit (three comparisons per unit), so an
 * array changed in place after it was first seen still gets its own arguments. Keyed weakly: an
 * array nobody holds any more (a hand-built query's) leaves the cache with it.
 */
export class UnitArgsCache<T> {
  private readonly entries = new WeakMap<
    readonly UnitLimit[],
    { readonly seen: readonly (string | number)[]; readonly value: T }
  >();

  /** @param build derives the value from `limits`; called on a miss only */
  constructor(private readonly build: (limits: readonly UnitLimit[]) => T) {}

  /** The value for `limits`, built on the first call for the array (or after it changed). */
  get(limits: readonly UnitLimit[]): T {
    const entry = this.entries.get(limits);
    if (entry !== undefined && UnitArgsCache.unchanged(entry.seen, limits)) return entry.value;
    const seen: (string | number)[] = [];
    for (const limit of limits) seen.push(limit.unit, limit.limit, limit.windowMs);
    const value = this.build(limits);
    this.entries.set(limits, { seen, value });
    return value;
  }

  private static unchanged(
    seen: readonly (string | number)[],
    limits: readonly UnitLimit[],
  ): boolean {
    if (seen.length !== 3 * limits.length) return false;
    for (let i = 0; i < limits.length; i++) {
      const limit = limits[i]!;
      if (
        seen[3 * i] !== limit.unit ||
        seen[3 * i + 1] !== limit.limit ||
        seen[3 * i + 2] !== limit.windowMs
      ) {
        return false;
      }
    }
    return true;
  }
}

/**
 * What both Redis backends share: option validation, the client (given, or created and owned),
 * script registration and invocation (one script call per operation), the test clock, the
 * user's block and closing.
 */
export abstract class RedisBackendBase extends RateLimitBackend implements OnApplicationBootstrap {
  /** Start of every key; validated (non-empty, no braces). */
  protected readonly prefix: string;
  private readonly name: string;
  /** Where the client connects, without a password (see {@link describe}). */
  private readonly address: string;
  /** Stops the start-up report; set once it started (see {@link onApplicationBootstrap}). */
  private stopStartupReport: (() => void) | undefined;
  private readonly testClock: (() => number) | undefined;
  /** Non-standard windows seen in this process, so `reset()` can name their keys. */
  private readonly extraWindows = new Map<string, UnitWindow>();
  /** True when the backend created the client, so `close()` may quit it. */
  private readonly ownsClient: boolean;
  /** True for an ioredis `Cluster` (always one the user passed in: own clients are single-node). */
  private readonly clustered: boolean;
  /** Set once the client is known (at once for a given client, after creation for an own one). */
  private client: RedisClientLike | undefined;
  private readonly clientPromise: Promise<RedisClientLike>;
  /** The wait for the client's first connection; settled once, then requests never wait. */
  private firstConnection: Promise<void> | undefined;
  private firstConnectionDone = false;
  private closed = false;
  /** The socket corked until the loop's next check phase, if any (see {@link holdWrites}). */
  private heldStream: { uncork(): void } | undefined;
  /** Uncorks {@link heldStream}; one function per backend, so scheduling it allocates nothing. */
  private readonly releaseWrites = (): void => {
    const stream = this.heldStream;
    this.heldStream = undefined;
    stream?.uncork();
  };

  /**
   * @param name the concrete class name, for messages
   * @param client an ioredis `Redis` or `Cluster`, or a URL / options to create one from
   * @param options prefix and test hooks
   * @throws RateLimitConfigError (`RATE_LIMIT_INVALID_OPTION`) when an argument is invalid
   */
  protected constructor(
    name: string,
    client: RedisBackendClient,
    options: RedisBackendOptions | undefined,
  ) {
    super();
    this.name = name;
    const fail: FailOption = optionFailure(name);

    // Checked because JavaScript callers (or `as` casts) can pass anything.
    const given: unknown = options ?? {};
    if (typeof given !== 'object' || given === null || Array.isArray(given)) {
      fail('options', `must be an object such as { prefix: 'rl:' }, got ${describeValue(given)}.`);
    }
    rejectUnknownKeys(given, KNOWN_OPTIONS, OPTION_HINTS, `a ${name} option`, fail);
    const { prefix = DEFAULT_KEY_PREFIX, testClock } = options ?? {};
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
    this.prefix = prefix;
    this.testClock = testClock;

    const source: unknown = client;
    if (isClient(source)) {
      this.ownsClient = false;
      this.clustered = isClusterClient(source);
      this.address = describeClient(source);
      this.client = source;
      this.clientPromise = Promise.resolve(source);
      this.warnAboutOfflineQueue(source);
    } else if (
      (typeof source === 'string' && source.trim() !== '') ||
      (typeof source === 'object' &&
        source !== null &&
        !Array.isArray(source) &&
        !looksLikeOtherClient(source))
    ) {
      this.ownsClient = true;
      this.clustered = false;
      this.address = describeSource(source as string | RedisConnectionOptions);
      this.clientPromise = createOwnClient(name, source as string | RedisConnectionOptions).then(
        (created) => {
          this.client = created;
          if (this.closed) created.disconnect(); // close() ran while it was being created
          return created;
        },
      );
      // Reported by the first call that needs the client, not as an unhandled rejection.
      this.clientPromise.catch(() => undefined);
    } else {
      fail(
        'client',
        `expected an ioredis Redis or Cluster instance, a connection URL such as ` +
          `'redis://localhost:6379', or ioredis connection options; got ` +
          `${typeof source === 'object' && source !== null ? 'an object without defineCommand() (only ioredis clients are supported)' : describeValue(source)}.`,
      );
    }
  }

  /**
   * The ioredis client this backend uses: the one passed in, or its own once created (which
   * loads ioredis). Handy for health checks; do not close a client the backend owns yourself.
   */
  getClient(): Promise<RedisClientLike> {
    return this.clientPromise;
  }

  /**
   * Names the backend and where it connects, without a password: `RedisBackend(redis://127.0.0.1:6379/0)`
   * for a URL, `RedisBackend(127.0.0.1:6379)` for options or a client passed in,
   * `SlidingRedisBackend(Redis Cluster)` for a Cluster.
   */
  override describe(): string {
    return `${this.name}(${this.address})`;
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
    if (this.stopStartupReport !== undefined || this.closed) return;
    this.stopStartupReport = () => undefined;
    const client = await this.clientPromise;
    if (this.closed) return;
    const logger = new Logger('RateLimit');
    // Watch first, then connect (waitForFirstConnection starts a lazyConnect client), so that no
    // event of the first attempt is missed.
    this.stopStartupReport = watchFirstConnection(client, STARTUP_READY_TIMEOUT_MS, {
      failed: (problem) =>
        logger.warn(
          `The rate-limit backend ${this.describe()} cannot reach Redis at start-up ` +
            `(${problem}); requests follow the failure policy until it is reachable.`,
        ),
      recovered: () =>
        logger.log(`The rate-limit backend ${this.describe()} has connected to Redis.`),
    });
    // The application starts taking requests once the first connection is made (or has failed,
    // or 1 s passed), not while it is being made: a burst of requests at start-up would otherwise
    // keep the event loop too busy to finish the handshake in time, and every request of that
    // burst would follow the failure policy.
    await this.waitForFirstConnection(client);
  }

  /**
   * Lifts the user's block (one script call).
   * @returns whether a block was still active
   */
  override async unblock(user: string): Promise<boolean> {
    const reply = await this.call(UNBLOCK_SCRIPT, [blockKey(this.prefix, user)], []);
    return this.parseFlag(reply);
  }

  /**
   * On a Redis Cluster, the hash slot of the user's keys (every key of one user shares the user's
   * hash tag, so one slot, so one node): a dead master then only sends the requests of the users
   * it holds to the failure policy. On a single node, `''`: the backend fails as a whole.
   */
  override partitionOf(user: string): string {
    return this.clustered ? `hash slot ${calculateSlot(userKeyStart(this.prefix, user))}` : '';
  }

  /**
   * Closes the client the backend created itself: `QUIT` when connected, so pending replies
   * arrive first, but waiting at most 500 ms for the server's answer, then dropping the
   * connection; it resolves within about a second even when Redis does not answer at all. A
   * client you passed in is left untouched (close it yourself), and this resolves at once.
   * Idempotent.
   */
  override async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.stopStartupReport?.();
    if (!this.ownsClient) return;
    let client: RedisClientLike;
    try {
      client = await this.clientPromise;
    } catch {
      return; // never created
    }
    if (client.status === 'end') return;
    if (client.status === 'ready') {
      // Resolves on the server's OK (the socket closes just after), rejects when the connection
      // drops first; either way it settles, or the disconnect below ends it.
      await settlesWithin(client.quit(), QUIT_TIMEOUT_MS);
    }
    if (client.status === 'reconnecting') {
      // Between two attempts there is no socket: disconnect() only cancels the next attempt, and
      // ioredis emits no 'end' then, so waiting for one would only delay shutdown by a second.
      client.disconnect();
    } else if (client.status !== 'end') {
      const ended = waitForEvent(client, ['end'], CLOSE_TIMEOUT_MS);
      if (client.status !== 'close') client.disconnect();
      await ended;
    }
  }

  /**
   * Runs one script: exactly one `EVALSHA`, or two when Redis answers `NOSCRIPT` (it has not seen
   * the script since it started, or its scripts were flushed), which runs nothing: then `EVAL`
   * sends the script itself, and Redis caches it for every later `EVALSHA`. The script's first
   * argument is the test clock's reading in whole microseconds, or `''` for Redis's clock.
   */
  protected call(
    script: ScriptDefinition,
    keys: readonly string[],
    args: readonly (string | number)[],
  ): Promise<unknown> {
    const argv = scriptArgv(script, keys.length);
    for (const key of keys) argv.push(key);
    argv.push('');
    for (const arg of args) argv.push(arg);
    return this.send(script, argv);
  }

  /**
   * {@link call} for callers that build the arguments themselves: `argv` = {@link scriptArgv},
   * the keys, a slot for the clock (filled here, right before sending), then the script's own
   * arguments. Build a fresh array per call: the `NOSCRIPT` retry rewrites its first two slots.
   * The consume paths use this to send without copying the arguments.
   */
  protected send(script: ScriptDefinition, argv: (string | number)[]): Promise<unknown> {
    const client = this.client;
    // Usual case: the client is there and has connected once; nothing to wait for.
    if (client === undefined || !this.firstConnectionDone) return this.sendWhenReady(script, argv);
    return this.evaluate(client, script, argv);
  }

  private async sendWhenReady(
    script: ScriptDefinition,
    argv: (string | number)[],
  ): Promise<unknown> {
    const client = this.client ?? (await this.clientPromise);
    if (!this.firstConnectionDone) await this.waitForFirstConnection(client);
    return await this.evaluate(client, script, argv);
  }

  /**
   * Sends `argv` through ioredis's generic `call`, the path of its plain commands. Its scripting
   * commands (`defineCommand`) cost more client CPU per call: they copy the arguments twice, add a
   * promise and a closure to catch `NOSCRIPT`, and send the whole script, not its SHA1, as the
   * first command on every new connection. The retry after `NOSCRIPT` is here instead.
   */
  private async evaluate(
    client: RedisClientLike,
    script: ScriptDefinition,
    argv: (string | number)[],
  ): Promise<unknown> {
    argv[SCRIPT_FIRST_KEY + (argv[SCRIPT_FIRST_KEY - 1] as number)] = this.testClockUs();
    if (this.heldStream === undefined) this.holdWrites(client);
    try {
      return await client.call(...argv);
    } catch (error) {
      if (!isNoScript(error)) throw error;
      argv[0] = 'eval';
      argv[1] = script.lua;
      if (this.heldStream === undefined) this.holdWrites(client);
      return await client.call(...argv);
    }
  }

  /**
   * Corks the client's socket until the event loop's next check phase (`setImmediate`), so that
   * every command sent in the meantime (the decisions of every request that the current loop
   * iteration handles) leaves in one write, instead of one write, and one system call on each
   * side, per command. That is when ioredis's auto-pipelining sends its batch too, but for about
   * half its client CPU per call: each command still takes ioredis's plain path (one command
   * object and its promise) and only the moment of the write changes. Other commands sent on the
   * client in that window wait for the same write (less than one loop iteration), in order. Only
   * for a single-node client the backend created itself and that has no auto-pipelining (which
   * batches by itself); a `Cluster` routes each command to a node of its own and sends as usual.
   */
  private holdWrites(client: RedisClientLike): void {
    // A client passed in stays the application's: its socket is never corked, since its other
    // commands would wait for the same write. Enable its auto-pipelining to batch its writes.
    if (!this.ownsClient) return;
    if (this.clustered || client.options?.enableAutoPipelining === true) return;
    const stream = client.stream;
    if (typeof stream?.cork !== 'function') return; // not connected yet, or not a socket
    stream.cork();
    this.heldStream = stream;
    setImmediate(this.releaseWrites);
  }

  /**
   * Sends one consume call: `template`'s arguments with the user's block key, each unit's key
   * (`unitKeyAt(<user key start>, <counter part>, <unit name>)`) and the block's length filled in.
   */
  protected async consumeWith(
    script: ScriptDefinition,
    template: ConsumeTemplate,
    query: ConsumeQuery,
    unitKeyAt: (start: string, part: string, name: string) => string,
  ): Promise<ConsumeResult> {
    const { counter } = query;
    const { names } = template;
    const argv = template.argv.slice();
    const start = userKeyStart(this.prefix, counter.user);
    const part = counterPart(counter);
    argv[CONSUME_BLOCK_KEY] = blockKeyAt(start);
    for (let i = 0; i < names.length; i++) {
      argv[CONSUME_BLOCK_KEY + 1 + i] = unitKeyAt(start, part, names[i]!);
    }
    argv[CONSUME_BLOCK_KEY + names.length + 2] = RedisBackendBase.blockArg(query.blockMs);
    if (template.extra.length > 0) this.rememberWindows(template.extra);
    return this.parseConsume(await this.send(script, argv), query);
  }

  /**
   * Notes the units among `extra` (those of a query whose window is not their unit's standard
   * one: hand-built queries only), so that {@link resetWindows} covers their keys too.
   */
  private rememberWindows(extra: readonly UnitLimit[]): void {
    for (const limit of extra) {
      const name = unitName(limit);
      if (this.extraWindows.has(name) || this.extraWindows.size >= MAX_EXTRA_WINDOWS) continue;
      this.extraWindows.set(name, { unit: limit.unit, windowMs: limit.windowMs });
    }
  }

  /**
   * The windows `reset()` clears, since a counter keeps one key per unit: every unit's standard
   * window (all that `Rule`s use) and the other window lengths this process has used for a
   * hand-built query (at most 64).
   */
  protected resetWindows(): UnitWindow[] {
    return [...STANDARD_WINDOWS, ...this.extraWindows.values()];
  }

  /** Parses an unblock or reset script's reply. */
  protected parseFlag(reply: unknown): boolean {
    return parseFlagReply(this.name, reply);
  }

  /** Parses a consume script's reply. */
  private parseConsume(reply: unknown, query: ConsumeQuery): ConsumeResult {
    return parseConsumeReply(this.name, reply, query.limits);
  }

  /** The block length to send: whole milliseconds (a fraction is rounded up). */
  private static blockArg(blockMs: number): number {
    return blockMs > 0 ? Math.ceil(blockMs) : 0;
  }

  /**
   * The script's time argument: `''` (Redis's clock) without a test clock, else its reading in
   * whole microseconds, split so that the millisecond is exactly `Math.floor(reading)`, as
   * `MemoryBackend` truncates its clock (multiplying first could round up into the next one).
   */
  private testClockUs(): string {
    if (this.testClock === undefined) return '';
    const ms: unknown = this.testClock();
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

  /**
   * Before its first connection is made, a client without an offline queue rejects every
   * command; wait for that first connection (bounded) so the first requests after start-up are
   * decided rather than failed. Once it settled, requests never wait here again: while Redis is
   * down, commands fail at once and the failure policy decides.
   */
  private waitForFirstConnection(client: RedisClientLike): Promise<void> {
    if (this.firstConnection !== undefined) return this.firstConnection;
    if (client.status === 'wait' && client.connect !== undefined) {
      client.connect().catch(() => undefined); // lazyConnect: the error surfaces as an event
    }
    if (!CONNECTING.has(client.status)) {
      this.firstConnectionDone = true;
      return Promise.resolve();
    }
    this.firstConnection = waitForEvent(
      client,
      ['ready', 'error', 'close', 'end'],
      OWN_CLIENT_CONNECT_TIMEOUT_MS,
    ).then(() => {
      this.firstConnectionDone = true;
    });
    return this.firstConnection;
  }

  private warnAboutOfflineQueue(client: RedisClientLike): void {
    if (client.options?.enableOfflineQueue !== true || warnedClients.has(client)) return;
    warnedClients.add(client);
    new Logger('RateLimit').warn(
      `${this.name}: the ioredis client passed in has enableOfflineQueue on. While Redis is ` +
        'unreachable, ioredis then queues every rate-limit check: requests wait instead of ' +
        'being decided by the failure policy, and the queued increments run late when Redis ' +
        'returns, counting requests that were answered long before. Create the client with ' +
        '{ enableOfflineQueue: false, maxRetriesPerRequest: 0, autoResendUnfulfilledCommands: ' +
        'false } (for a Cluster: enableOfflineQueue: false at the top level, the other two in ' +
        'redisOptions), or pass a connection URL or options and let the backend create and ' +
        'own a client configured that way.',
    );
  }
}
