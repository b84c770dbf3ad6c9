import { Logger } from '@nestjs/common';
import { describeValue, optionFailure, type FailOption } from '../config-validation.js';
import type { MaybePromise } from '../internal/maybe-promise.js';
import { MemoryBackend } from './memory.backend.js';
import { BackendWatchdog, WHOLE_BACKEND } from './backend-watchdog.js';
import type { ConsumeQuery, ConsumeResult, RateLimitBackend } from './rate-limit.backend.js';

export { BackendTimeoutError } from './backend-watchdog.js';

/**
 * What to do with a request when the backend fails or does not answer in time:
 * - `'open'`: let it through unlimited (the default: an outage of the limiter is not an outage of
 *   the API);
 * - `'closed'`: answer 503 with `Retry-After`;
 * - `'fallback'`: decide it with an in-process backend until the backend is back.
 */
export type FailurePolicy = 'open' | 'closed' | 'fallback';

/** Options of {@link BackendFailureHandler}, taken from the module options. */
export interface FailureHandlingOptions {
  /** @default 'open' */
  failurePolicy?: FailurePolicy;
  /**
   * How long, in ms, the backend may give no answer at all while requests wait on it before the
   * failure policy decides them (and the next 500 ms of requests that need the same part of it).
   * @default 250
   */
  backendTimeoutMs?: number;
  /** The in-process backend for `'fallback'`. @default new MemoryBackend() */
  fallbackBackend?: RateLimitBackend;
}

/** What the failure policy says for a request the backend could not decide. */
export type FailureOutcome = { readonly kind: 'open' } | { readonly kind: 'closed' };

const fail: FailOption = optionFailure('RateLimitModule');

/** During an outage, how often one request per failing partition probes whether it is back. */
const PROBE_INTERVAL_MS = 500;
/**
 * A failing partition that no request has needed for this long is forgotten: nothing tells
 * whether it is back, and an outage that never ended would hide the warning of the next one.
 */
const FORGET_AFTER_MS = 60_000;
const POLICIES: readonly unknown[] = ['open', 'closed', 'fallback'];

/** A partition of the backend that failed, and when to try it again. */
interface FailingPartition {
  /** `Date.now()` from which one request may probe the partition again. */
  nextProbeAt: number;
  /** `Date.now()` of its last failure. */
  failedAt: number;
}

/**
 * Calls the backend with a time bound and applies the failure policy when it fails. It behaves
 * like a circuit breaker per partition of the backend (the whole backend, or one Redis Cluster
 * hash slot: see `RateLimitBackend.partitionOf`): after a failure, requests that need that
 * partition do not wait on it again until a probe (one request every 500 ms) succeeds, so an
 * outage costs each request at most one timeout and limiting resumes within about half a second
 * of the partition returning, while the requests of healthy partitions are limited throughout.
 *
 * The time bound is on the backend's silence, not on each call's latency (see
 * {@link BackendWatchdog}): a flood that keeps the application's event loop busy never looks like
 * an outage. It logs one warning when an outage starts (the first partition fails) and one line
 * when it ends (no partition is failing any more), never one per request or per partition.
 */
export class BackendFailureHandler {
  private readonly logger = new Logger('RateLimit');
  private readonly policy: FailurePolicy;
  private readonly fallback: RateLimitBackend | undefined;
  private readonly watchdog: BackendWatchdog;
  /** The failing partitions; empty while the backend is healthy, the usual case. */
  private readonly failing = new Map<string, FailingPartition>();
  private outageStartedAt: number | undefined;
  private nextForgetAt = 0;
  private nextReleaseWarningAt = 0;

  constructor(
    private readonly backend: RateLimitBackend,
    options: FailureHandlingOptions,
  ) {
    const { failurePolicy = 'open', backendTimeoutMs = 250, fallbackBackend } = options;
    if (!POLICIES.includes(failurePolicy)) {
      fail(
        'failurePolicy',
        `expected 'open', 'closed' or 'fallback', got ${describeValue(failurePolicy)}.`,
      );
    }
    if (!Number.isFinite(backendTimeoutMs) || backendTimeoutMs <= 0) {
      fail(
        'backendTimeoutMs',
        `expected a number of milliseconds above 0, got ${describeValue(backendTimeoutMs)}.`,
      );
    }
    this.policy = failurePolicy;
    this.watchdog = new BackendWatchdog(backendTimeoutMs);
    this.fallback =
      failurePolicy === 'fallback' ? (fallbackBackend ?? new MemoryBackend()) : undefined;
  }

  /**
   * Decides `query` with the backend, or with the failure policy when the partition it needs is
   * failing. A synchronous backend's answer comes back synchronously.
   */
  consume(query: ConsumeQuery): MaybePromise<ConsumeResult | FailureOutcome> {
    // The partition is only worked out when something is failing, or for the time bound.
    let partition: string | undefined;
    if (this.failing.size !== 0) {
      partition = this.backend.partitionOf(query.counter.user);
      const failing = this.failing.get(partition);
      if (failing !== undefined && Date.now() < failing.nextProbeAt) return this.onFailure(query);
    }
    let result: MaybePromise<ConsumeResult>;
    try {
      result = this.backend.consume(query);
    } catch (error) {
      return this.onError(error, query, partition);
    }
    if (!(result instanceof Promise)) return this.onSuccess(result, query, partition);
    const part = partition ?? this.backend.partitionOf(query.counter.user);
    return this.watchdog.bound(result, part).then(
      (answer) => this.onSuccess(answer, query, part),
      (error: unknown) => this.onError(error, query, part),
    );
  }

  /**
   * Decides `query` by the failure policy without asking the backend, as if it had failed: for a
   * request the module cannot put to the backend (a rule's cost function failed). The backend's
   * health is not touched.
   */
  withoutBackend(query: ConsumeQuery): MaybePromise<ConsumeResult | FailureOutcome> {
    return this.onFailure(query);
  }

  /**
   * What the policy says for a request whose rule gave no limits to count against (its limit
   * function failed): `'closed'` rejects it, `'open'` and `'fallback'` let it through, since the
   * fallback backend has nothing to count it against either.
   */
  withoutLimits(): FailureOutcome {
    return this.policy === 'closed' ? CLOSED : OPEN;
  }

  /** {@link behaviour} for the requests of {@link withoutLimits}. */
  behaviourWithoutLimits(requests: string): string {
    return FAILURE_BEHAVIOUR[this.policy === 'closed' ? 'closed' : 'open'](requests);
  }

  /**
   * Gives back an admitted request of `query` (a `count: 'failures' | 'successes'` rule whose
   * response does not count) to the backend, while the partition it needs is healthy: during an
   * outage the request was counted elsewhere, or not at all. Never throws or rejects: a failure
   * is logged at most once a minute, and the request then stays counted, the safe side.
   */
  release(query: ConsumeQuery): void {
    if (this.failing.size !== 0 && this.failing.has(this.backend.partitionOf(query.counter.user))) {
      return;
    }
    try {
      const released = this.backend.release(query);
      if (released instanceof Promise)
        released.catch((error: unknown) => this.releaseFailed(error));
    } catch (error) {
      this.releaseFailed(error);
    }
  }

  private releaseFailed(error: unknown): void {
    const now = Date.now();
    if (now < this.nextReleaseWarningAt) return;
    this.nextReleaseWarningAt = now + 60_000;
    this.logger.warn(
      `The rate-limit backend ${this.backend.describe()} failed to give back a request that ` +
        `does not count (${errorSummary(error)}); it stays counted. (Logged at most once a minute.)`,
    );
  }

  /** True while no partition of the backend is failing: every answer is the backend's own. */
  get healthy(): boolean {
    return this.failing.size === 0;
  }

  /** The in-process backend of `failurePolicy: 'fallback'`; undefined under another policy. */
  get fallbackBackend(): RateLimitBackend | undefined {
    return this.fallback;
  }

  /** What the policy does with `requests` (`'its requests'`), for a warning. */
  behaviour(requests: string): string {
    return FAILURE_BEHAVIOUR[this.policy](requests);
  }

  /** Releases the fallback backend's timer, if one was created here. */
  async close(): Promise<void> {
    await this.fallback?.close();
  }

  private onSuccess(
    result: ConsumeResult,
    query: ConsumeQuery,
    partition: string | undefined,
  ): ConsumeResult {
    if (this.failing.size !== 0) {
      this.recovered(partition ?? this.backend.partitionOf(query.counter.user));
    }
    return result;
  }

  private onError(
    error: unknown,
    query: ConsumeQuery,
    partition: string | undefined,
  ): MaybePromise<ConsumeResult | FailureOutcome> {
    this.failed(error, partition ?? this.backend.partitionOf(query.counter.user));
    return this.onFailure(query);
  }

  private onFailure(query: ConsumeQuery): MaybePromise<ConsumeResult | FailureOutcome> {
    if (this.fallback) {
      // A rule without its own algorithm counts with the backend's: the fallback must count the
      // same way, not with its own default (only during an outage, so the copy costs nothing).
      const { algorithm } = this.backend;
      const same = query.algorithm !== undefined || this.fallback.algorithm === algorithm;
      return this.fallback.consume(same ? query : { ...query, algorithm });
    }
    return this.policy === 'closed' ? CLOSED : OPEN;
  }

  private failed(error: unknown, partition: string): void {
    const now = Date.now();
    const known = this.failing.get(partition);
    if (known !== undefined) {
      known.nextProbeAt = now + PROBE_INTERVAL_MS;
      known.failedAt = now;
      return;
    }
    this.failing.set(partition, { nextProbeAt: now + PROBE_INTERVAL_MS, failedAt: now });
    if (this.outageStartedAt !== undefined) return;
    this.outageStartedAt = now;
    const whole = partition === WHOLE_BACKEND;
    const requests = whole ? 'requests' : 'the requests that need it';
    this.logger.warn(
      `The rate-limit backend ${this.backend.describe()} failed${whole ? '' : ` for ${partition}`} ` +
        `(${errorSummary(error)}); ${FAILURE_BEHAVIOUR[this.policy](requests)} until it answers again.`,
    );
  }

  /** A request of `partition` succeeded; the outage ends once no partition is failing. */
  private recovered(partition: string): void {
    this.failing.delete(partition);
    const now = Date.now();
    if (this.failing.size !== 0 && now >= this.nextForgetAt) {
      this.nextForgetAt = now + PROBE_INTERVAL_MS;
      for (const [stale, state] of this.failing) {
        if (now - state.failedAt >= FORGET_AFTER_MS) this.failing.delete(stale);
      }
    }
    if (this.failing.size !== 0 || this.outageStartedAt === undefined) return;
    const seconds = ((now - this.outageStartedAt) / 1000).toFixed(1);
    this.outageStartedAt = undefined;
    this.logger.log(
      `The rate-limit backend ${this.backend.describe()} answers again after ${seconds} s; ` +
        'limiting as usual.',
    );
  }
}

const FAILURE_BEHAVIOUR: Readonly<Record<FailurePolicy, (requests: string) => string>> = {
  open: (requests) => `letting ${requests} through unlimited`,
  closed: (requests) => `answering 503 to ${requests}`,
  fallback: (requests) => `limiting ${requests} in process memory`,
};

const OPEN: FailureOutcome = Object.freeze({ kind: 'open' });
const CLOSED: FailureOutcome = Object.freeze({ kind: 'closed' });

/** One line for the log: the error's name and message, never a stack per request. */
function errorSummary(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return String(error);
}

/** True when `value` is a policy outcome rather than a backend result. */
export function isFailureOutcome(value: ConsumeResult | FailureOutcome): value is FailureOutcome {
  return 'kind' in value;
}
