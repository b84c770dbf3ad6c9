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
  private readonly timeoutMs: number;
  private readonly fallback: RateLimitBackend | undefined;
  private outageStartedAt: number | undefined;
  private nextProbeAt = 0;

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
    this.timeoutMs = backendTimeoutMs;
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
    return this.withTimeout(result).then(
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

  private withTimeout(result: Promise<ConsumeResult>): Promise<ConsumeResult> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new BackendTimeoutError(this.timeoutMs)), this.timeoutMs);
    });
    return Promise.race([result, deadline]).finally(() => clearTimeout(timer));
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
