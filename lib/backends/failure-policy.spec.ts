/**
 * The time bound of BackendFailureHandler: one shared timer for every call in flight (see
 * SharedTimeout in failure-policy.ts). The policies themselves, over HTTP, are in
 * test/failure-policy.spec.ts.
 */
import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { Logger } from '@nestjs/common';
import { BackendFailureHandler, isFailureOutcome } from './failure-policy.js';
import {
  RateLimitBackend,
  type ConsumeQuery,
  type ConsumeResult,
  type RateLimitCounter,
} from './rate-limit.backend.js';

const ADMITTED: ConsumeResult = {
  allowed: true,
  retryAfterMs: 0,
  blocked: false,
  unit: undefined,
  units: [],
};

const QUERY: ConsumeQuery = {
  counter: { user: 'u', scope: 'path:/', method: '*' },
  limits: [{ unit: 'minute', limit: 1, windowMs: 60_000 }],
  blockMs: 0,
};

/** A backend whose every call waits until the test settles it. */
class ManualBackend extends RateLimitBackend {
  readonly calls: {
    resolve: (result: ConsumeResult) => void;
    reject: (error: Error) => void;
  }[] = [];

  consume(): Promise<ConsumeResult> {
    return new Promise((resolve, reject) => this.calls.push({ resolve, reject }));
  }
  unblock(): boolean {
    return false;
  }
  reset(_counter: RateLimitCounter): boolean {
    return false;
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Settles `promise`'s outcome as a string, with the time it took, from `start`. */
async function outcome(
  promise: Promise<unknown> | unknown,
  start: number,
): Promise<{ what: string; ms: number }> {
  const value = await promise;
  const what =
    typeof value === 'object' && value !== null && 'kind' in value
      ? String((value as { kind: string }).kind)
      : 'answer';
  return { what, ms: performance.now() - start };
}

describe('BackendFailureHandler time bound', () => {
  beforeEach(() => {
    jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
  });
  afterEach(() => {
    jest.restoreAllMocks();
  });

  it('times each call out at its own deadline, with one timer for all of them', async () => {
    const backend = new ManualBackend();
    const handler = new BackendFailureHandler(backend, {
      failurePolicy: 'closed',
      backendTimeoutMs: 80,
    });
    const setTimer = jest.spyOn(globalThis, 'setTimeout');
    const start = performance.now();
    const first = outcome(handler.consume(QUERY), start);
    const answered = outcome(handler.consume(QUERY), start);
    await sleep(40);
    const later = outcome(handler.consume(QUERY), start);
    // One timer for the three calls so far, armed for the oldest deadline.
    expect(setTimer.mock.calls.filter(([, ms]) => ms === 80)).toHaveLength(1);
    backend.calls[1]!.resolve(ADMITTED);

    const [a, b, c] = await Promise.all([first, answered, later]);
    expect(b.what).toBe('answer');
    expect(b.ms).toBeLessThan(75);
    expect(a.what).toBe('closed');
    expect(a.ms).toBeGreaterThanOrEqual(75);
    // The later call got its own 80 ms, not the first call's deadline.
    expect(c.what).toBe('closed');
    expect(c.ms).toBeGreaterThanOrEqual(115);
    expect(c.ms).toBeLessThan(1_000);
  });

  it('ignores an answer or an error that arrives after the timeout', async () => {
    const backend = new ManualBackend();
    const handler = new BackendFailureHandler(backend, {
      failurePolicy: 'closed',
      backendTimeoutMs: 20,
    });
    const late = handler.consume(QUERY);
    const lateError = handler.consume(QUERY);
    const results = await Promise.all([late, lateError]);
    expect(results.every((result) => isFailureOutcome(result))).toBe(true);
    backend.calls[0]!.resolve(ADMITTED);
    backend.calls[1]!.reject(new Error('too late')); // no unhandled rejection either
    await sleep(5);
    expect(await late).toEqual({ kind: 'closed' });
  });

  it('leaves no timer once nothing is in flight, and never holds the process open', async () => {
    const backend = new ManualBackend();
    const handler = new BackendFailureHandler(backend, { backendTimeoutMs: 10_000 });
    const setTimer = jest.spyOn(globalThis, 'setTimeout');
    const clearTimer = jest.spyOn(globalThis, 'clearTimeout');
    const pending = [handler.consume(QUERY), handler.consume(QUERY)];
    const armed = setTimer.mock.results.find((_, i) => setTimer.mock.calls[i]![1] === 10_000);
    const timer = armed?.value as NodeJS.Timeout;
    expect(timer.hasRef()).toBe(false);
    backend.calls[0]!.resolve(ADMITTED);
    await pending[0];
    expect(clearTimer).not.toHaveBeenCalledWith(timer); // one call still in flight
    backend.calls[1]!.resolve(ADMITTED);
    expect(await pending[1]).toBe(ADMITTED);
    expect(clearTimer).toHaveBeenCalledWith(timer);
    // A new call arms a new timer.
    const next = handler.consume(QUERY);
    expect(setTimer.mock.calls.filter(([, ms]) => ms === 10_000)).toHaveLength(2);
    backend.calls[2]!.resolve(ADMITTED);
    expect(await next).toBe(ADMITTED);
  });

  it('keeps the queue about as long as the calls in flight, answers in or out of order', async () => {
    const backend = new ManualBackend();
    const handler = new BackendFailureHandler(backend, {
      failurePolicy: 'closed',
      backendTimeoutMs: 5_000,
    });
    const queueLength = (): number =>
      (Reflect.get(Reflect.get(handler, 'deadlines') as object, 'queue') as unknown[]).length;
    const results: Promise<unknown>[] = [];
    const longest: number[] = [];
    for (let round = 0; round < 50; round++) {
      const from = backend.calls.length;
      for (let i = 0; i < 100; i++) results.push(Promise.resolve(handler.consume(QUERY)));
      // Answer the previous round's last call, then this round's calls but its last one, odd
      // ones first: a call is always in flight, so the queue is never simply dropped.
      if (from > 0) backend.calls[from - 1]!.resolve(ADMITTED);
      const last = backend.calls.length - 1;
      for (let i = from + 1; i < last; i += 2) backend.calls[i]!.resolve(ADMITTED);
      for (let i = from; i < last; i += 2) backend.calls[i]!.resolve(ADMITTED);
      await new Promise((resolve) => setImmediate(resolve));
      longest.push(queueLength());
    }
    backend.calls.at(-1)!.resolve(ADMITTED);
    const all = await Promise.all(results);
    expect(all.every((result) => result === ADMITTED)).toBe(true);
    expect(Math.max(...longest)).toBeLessThanOrEqual(200);
    expect(queueLength()).toBe(0);
  });
});
