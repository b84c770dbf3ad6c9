import { Logger } from '@nestjs/common';
import { describeValue, optionFailure, type FailOption } from '../config-validation.js';
import type { MaybePromise } from '../internal/maybe-promise.js';
import { MemoryBackend } from './memory.backend.js';
import type { ConsumeQuery, ConsumeResult, RateLimitBackend } from './rate-limit.backend.js';

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
   * Longest a request waits for the backend, in ms, before the failure policy decides it.
   * @default 250
   */
  backendTimeoutMs?: number;
  /** The in-process backend for `'fallback'`. @default new MemoryBackend() */
  fallbackBackend?: RateLimitBackend;
}

/** Thrown when the backend did not answer within `backendTimeoutMs`. */
export class BackendTimeoutError extends Error {
  constructor(ms: number) {
    super(`The rate-limit backend did not answer within ${ms} ms`);
    this.name = 'BackendTimeoutError';
  }
}

/** What the failure policy says for a request the backend could not decide. */
export type FailureOutcome = { readonly kind: 'open' } | { readonly kind: 'closed' };

const fail: FailOption = optionFailure('RateLimitModule');

/** During an outage, how often one request is let through to the backend to see if it is back. */
const PROBE_INTERVAL_MS = 500;
const POLICIES: readonly unknown[] = ['open', 'closed', 'fallback'];

/** A call waiting for the backend, with the rejection to apply if its deadline passes first. */
interface PendingCall {
  /** `performance.now()` after which the call times out. */
  readonly deadline: number;
  /** Rejects the caller's promise; cleared once the call settled either way. */
  fail: ((error: BackendTimeoutError) => void) | undefined;
}

/**
 * One time bound, `ms`, for every call a {@link BackendFailureHandler} makes, kept with one timer
 * for all of them rather than a timer, a deadline promise, a `Promise.race` and a `finally` per
 * call (this runs on every request).
 *
 * Every call gets the same bound, so deadlines come in the order the calls started: the calls in
 * flight form a queue (FIFO), and the one timer is armed for the oldest deadline only. When it
 * fires, every call whose deadline has passed is rejected with {@link BackendTimeoutError}, and
 * the timer is armed again for the oldest call left. A call that settles in time is marked
 * settled, and the settled calls at the front of the queue are dropped at once (a backend mostly
 * answers in order, so the queue stays about as long as the calls in flight); an answer that
 * arrives after the timeout is ignored. Once no call is in flight the timer is cleared and the
 * queue emptied, so nothing is left pending and the process can exit; the timer is also unref'd,
 * so it never keeps the process alive by itself.
 */
class SharedTimeout {
  /** Calls in start (so deadline) order; the slots before `head` are settled. */
  private queue: PendingCall[] = [];
  private head = 0;
  /** Calls not settled yet. */
  private inFlight = 0;
  private timer: NodeJS.Timeout | undefined;
  /** The deadline the timer was armed for. */
  private armedFor = 0;

  constructor(private readonly ms: number) {}

  /** `result`, or a {@link BackendTimeoutError} when it has not settled within `ms`. */
  bound<T>(result: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const call: PendingCall = { deadline: performance.now() + this.ms, fail: reject };
      this.queue.push(call);
      this.inFlight++;
      if (this.timer === undefined) this.arm(call.deadline, this.ms);
      result.then(
        (value) => {
          if (this.settle(call)) resolve(value);
        },
        (error: unknown) => {
          if (this.settle(call)) reject(error);
        },
      );
    });
  }

  /** Marks `call` settled; false when it timed out already (its late answer is dropped). */
  private settle(call: PendingCall): boolean {
    if (call.fail === undefined) return false;
    call.fail = undefined;
    if (--this.inFlight === 0) this.idle();
    else if (this.queue[this.head] === call) this.dropSettled();
    return true;
  }

  /** Moves `head` past the settled calls at the front, and compacts the queue now and then. */
  private dropSettled(): void {
    const { queue } = this;
    let head = this.head;
    while (head < queue.length && queue[head]!.fail === undefined) head++;
    // Compact once the settled slots are at least half the queue: amortised O(1) per call, and
    // settled calls stay referenced for a short while only.
    if (head >= 64 && head * 2 >= queue.length) {
      queue.copyWithin(0, head);
      queue.length -= head;
      head = 0;
    }
    this.head = head;
  }

  private arm(deadline: number, delayMs: number): void {
    this.armedFor = deadline;
    this.timer = setTimeout(this.expire, Math.max(1, Math.ceil(delayMs)));
    this.timer.unref();
  }

  /** Nothing in flight: no timer, no queue. */
  private idle(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.queue = [];
    this.head = 0;
  }

  /** The timer: rejects every call past its deadline, then waits for the oldest one left. */
  private readonly expire = (): void => {
    this.timer = undefined;
    const now = performance.now();
    // Due: every call whose deadline has passed, and the call the timer was armed for even if
    // the clock reads a hair before its deadline (timers count whole milliseconds), so that each
    // firing makes progress.
    const due = Math.max(now, this.armedFor);
    const { queue } = this;
    while (this.head < queue.length) {
      const call = queue[this.head]!;
      const fail = call.fail;
      if (fail !== undefined) {
        if (call.deadline > due) break;
        call.fail = undefined;
        this.inFlight--;
        fail(new BackendTimeoutError(this.ms));
      }
      this.head++;
    }
    if (this.inFlight === 0) {
      this.idle();
      return;
    }
    this.dropSettled(); // compacts; the front call is in flight
    const next = this.queue[this.head]!.deadline;
    this.arm(next, next - now);
  };
}

/**
 * Calls the backend with a time bound and applies the failure policy when it fails. It behaves
 * like a circuit breaker: after a failure, requests do not wait on the backend again until a
 * probe (one request every 500 ms) succeeds, so an outage costs each request at most one timeout
 * and limiting resumes within about half a second of the backend returning. It logs one warning
 * when an outage starts and one line when it ends, never one per request.
 */
export class BackendFailureHandler {
  private readonly logger = new Logger('RateLimit');
  private readonly policy: FailurePolicy;
  private readonly fallback: RateLimitBackend | undefined;
  private outageStartedAt: number | undefined;
  private nextProbeAt = 0;
  private readonly deadlines: SharedTimeout;

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
    this.deadlines = new SharedTimeout(backendTimeoutMs);
    this.fallback =
      failurePolicy === 'fallback' ? (fallbackBackend ?? new MemoryBackend()) : undefined;
  }

  /**
   * Decides `query` with the backend, or with the failure policy when the backend cannot. A
   * synchronous backend's answer comes back synchronously.
   */
  consume(query: ConsumeQuery): MaybePromise<ConsumeResult | FailureOutcome> {
    if (this.outageStartedAt !== undefined && Date.now() < this.nextProbeAt) {
      return this.onFailure(query);
    }
    let result: MaybePromise<ConsumeResult>;
    try {
      result = this.backend.consume(query);
    } catch (error) {
      return this.onError(error, query);
    }
    if (!(result instanceof Promise)) return this.onSuccess(result);
    return this.deadlines.bound(result).then(
      (answer) => this.onSuccess(answer),
      (error: unknown) => this.onError(error, query),
    );
  }

  private onSuccess(result: ConsumeResult): ConsumeResult {
    if (this.outageStartedAt !== undefined) this.recovered();
    return result;
  }

  private onError(
    error: unknown,
    query: ConsumeQuery,
  ): MaybePromise<ConsumeResult | FailureOutcome> {
    this.failed(error);
    return this.onFailure(query);
  }

  /** Releases the fallback backend's timer, if one was created here. */
  async close(): Promise<void> {
    await this.fallback?.close();
  }

  private onFailure(query: ConsumeQuery): MaybePromise<ConsumeResult | FailureOutcome> {
    if (this.fallback) return this.fallback.consume(query);
    return this.policy === 'closed' ? CLOSED : OPEN;
  }

  private failed(error: unknown): void {
    const now = Date.now();
    this.nextProbeAt = now + PROBE_INTERVAL_MS;
    if (this.outageStartedAt !== undefined) return;
    this.outageStartedAt = now;
    const what = FAILURE_BEHAVIOUR[this.policy];
    this.logger.warn(
      `The rate-limit backend failed (${errorSummary(error)}); ${what} until it answers again.`,
    );
  }

  private recovered(): void {
    const seconds = ((Date.now() - this.outageStartedAt!) / 1000).toFixed(1);
    this.outageStartedAt = undefined;
    this.logger.log(`The rate-limit backend answers again after ${seconds} s; limiting as usual.`);
  }
}

const FAILURE_BEHAVIOUR: Readonly<Record<FailurePolicy, string>> = {
  open: 'letting requests through unlimited',
  closed: 'answering 503',
  fallback: 'limiting in process memory',
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
