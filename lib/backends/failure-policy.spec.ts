/**
 * BackendFailureHandler's breaker, per partition of the backend (the whole backend, or one Redis
 * Cluster hash slot): a failing partition sends only its own requests to the failure policy, and
 * an outage is one warning and one recovery line however many partitions it touches. The time
 * bound is in backend-watchdog.spec.ts; the policies over HTTP in test/failure-policy.spec.ts;
 * a real cluster with a killed master in test/redis-cluster-failover.spec.ts.
 */
import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { Logger } from '@nestjs/common';
import { BackendFailureHandler, isFailureOutcome } from './failure-policy.js';
import { MemoryBackend } from './memory.backend.js';
import {
  RateLimitBackend,
  type ConsumeQuery,
  type ConsumeResult,
  type RateLimitCounter,
} from './rate-limit.backend.js';

/** Users `dead-*` live on partitions that throw until healed; everyone else on a healthy one. */
class PartitionedBackend extends RateLimitBackend {
  readonly dead = new Set<string>();
  readonly inner = new MemoryBackend({ sweepIntervalMs: 0, clock: () => 0 });
  calls = 0;

  override partitionOf(user: string): string {
    return `part ${user.split('-')[1] ?? 'x'}`;
  }
  consume(query: ConsumeQuery): Promise<ConsumeResult> {
    this.calls++;
    if (this.dead.has(this.partitionOf(query.counter.user))) {
      return Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:7001'));
    }
    return Promise.resolve(this.inner.consume(query));
  }
  unblock(): boolean {
    return false;
  }
  reset(_counter: RateLimitCounter): boolean {
    return false;
  }
}

function query(user: string): ConsumeQuery {
  return {
    counter: { user, scope: 'path:/', method: '*' },
    limits: [{ unit: 'minute', limit: 2, windowMs: 60_000 }],
    blockMs: 0,
  };
}

describe('BackendFailureHandler per partition', () => {
  let now: number;
  let warn: jest.SpiedFunction<Logger['warn']>;
  let log: jest.SpiedFunction<Logger['log']>;

  beforeEach(() => {
    now = 1_000_000;
    jest.spyOn(Date, 'now').mockImplementation(() => now);
    warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    log = jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
  });
  afterEach(() => {
    jest.restoreAllMocks();
  });

  /** What the handler decided for `user`: allowed, rejected, or the policy's outcome. */
  async function decide(handler: BackendFailureHandler, user: string): Promise<string> {
    const result = await handler.consume(query(user));
    if (isFailureOutcome(result)) return result.kind;
    return result.allowed ? 'allowed' : 'rejected';
  }

  it('limits the users of healthy partitions while another partition is down', async () => {
    const backend = new PartitionedBackend();
    const handler = new BackendFailureHandler(backend, { failurePolicy: 'open' });
    backend.dead.add('part 1');
    const healthy: string[] = [];
    const dying: string[] = [];
    for (let i = 0; i < 6; i++) {
      dying.push(await decide(handler, 'u-1'));
      healthy.push(await decide(handler, 'u-2'));
      now += 100;
    }
    expect(healthy).toEqual(['allowed', 'allowed', 'rejected', 'rejected', 'rejected', 'rejected']);
    expect(dying).toEqual(['open', 'open', 'open', 'open', 'open', 'open']);
    // The dead partition was tried at 0 ms, then again only after the 500 ms probe interval.
    expect(backend.calls).toBe(6 + 2);
    expect(warn.mock.calls.map(([message]) => String(message))).toEqual([
      'The rate-limit backend PartitionedBackend failed for part 1 (Error: connect ECONNREFUSED 127.0.0.1:7001); ' +
        'letting the requests that need it through unlimited until it answers again.',
    ]);
    expect(log).not.toHaveBeenCalled();
  });

  it('logs one warning however many partitions fail, and one line once none is failing', async () => {
    const backend = new PartitionedBackend();
    const handler = new BackendFailureHandler(backend, { failurePolicy: 'closed' });
    for (const part of ['1', '2', '3']) backend.dead.add(`part ${part}`);
    for (let round = 0; round < 4; round++) {
      for (const part of ['1', '2', '3', '4']) await decide(handler, `u-${part}`);
      now += 600; // every failing partition is probed again, and fails again
    }
    expect(warn).toHaveBeenCalledTimes(1);
    expect(log).not.toHaveBeenCalled();
    backend.dead.delete('part 1');
    backend.dead.delete('part 2');
    expect(await decide(handler, 'u-1')).toBe('allowed');
    expect(await decide(handler, 'u-2')).toBe('allowed');
    expect(log).not.toHaveBeenCalled(); // part 3 is still failing
    backend.dead.delete('part 3');
    expect(await decide(handler, 'u-3')).toBe('allowed');
    expect(log.mock.calls.map(([message]) => String(message))).toEqual([
      'The rate-limit backend PartitionedBackend answers again after 2.4 s; limiting as usual.',
    ]);
    // The next failure is a new outage, with its own warning.
    backend.dead.add('part 4');
    expect(await decide(handler, 'u-4')).toBe('closed');
    expect(warn).toHaveBeenCalledTimes(2);
  });

  it('forgets a failing partition that no request has needed for a minute', async () => {
    const backend = new PartitionedBackend();
    const handler = new BackendFailureHandler(backend, { failurePolicy: 'open' });
    backend.dead.add('part 1');
    expect(await decide(handler, 'u-1')).toBe('open');
    now += 59_000;
    expect(await decide(handler, 'u-2')).toBe('allowed');
    expect(log).not.toHaveBeenCalled();
    now += 1_000;
    expect(await decide(handler, 'u-2')).toBe('allowed');
    // Nothing tells whether part 1 is back, but an outage that never ended would hide the
    // warning of the next one.
    expect(log).toHaveBeenCalledTimes(1);
    expect(await decide(handler, 'u-1')).toBe('open');
    expect(warn).toHaveBeenCalledTimes(2);
  });

  it('treats a backend without partitions as one: a failure sends every request to the policy', async () => {
    const backend = new PartitionedBackend();
    backend.partitionOf = () => '';
    const handler = new BackendFailureHandler(backend, { failurePolicy: 'closed' });
    backend.dead.add('');
    expect(await decide(handler, 'u-1')).toBe('closed');
    backend.dead.clear();
    expect(await decide(handler, 'u-2')).toBe('closed'); // not probed again before 500 ms
    now += 500;
    expect(await decide(handler, 'u-2')).toBe('allowed');
    expect(warn.mock.calls.map(([message]) => String(message))).toEqual([
      'The rate-limit backend PartitionedBackend failed (Error: connect ECONNREFUSED 127.0.0.1:7001); ' +
        'answering 503 to requests until it answers again.',
    ]);
    expect(log).toHaveBeenCalledTimes(1);
  });
});

describe('BackendFailureHandler without the backend', () => {
  /** Fails every call, and counts with a token bucket by default. */
  class DownTokenBucket extends RateLimitBackend {
    calls = 0;
    override get algorithm(): 'token-bucket' {
      return 'token-bucket';
    }
    consume(): ConsumeResult {
      this.calls++;
      throw new Error('down');
    }
    unblock(): boolean {
      return false;
    }
    reset(): boolean {
      return false;
    }
  }

  beforeEach(() => {
    jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
  });
  afterEach(() => {
    jest.restoreAllMocks();
  });

  it('has the fallback count a query that names no algorithm with the backend’s, not its own', () => {
    const backend = new DownTokenBucket();
    const fallbackBackend = new MemoryBackend({ sweepIntervalMs: 0, clock: () => 0 });
    const handler = new BackendFailureHandler(backend, {
      failurePolicy: 'fallback',
      fallbackBackend,
    });
    const seen: ConsumeQuery[] = [];
    const consume = fallbackBackend.consume.bind(fallbackBackend);
    jest.spyOn(fallbackBackend, 'consume').mockImplementation((q) => {
      seen.push(q);
      return consume(q);
    });
    handler.consume(query('u'));
    handler.consume({ ...query('u'), algorithm: 'sliding-log' });
    expect(seen.map((q) => q.algorithm)).toEqual(['token-bucket', 'sliding-log']);
  });

  it('decides by the policy and leaves the backend alone: withoutBackend', () => {
    const backend = new DownTokenBucket();
    expect(new BackendFailureHandler(backend, {}).withoutBackend(query('u'))).toEqual({
      kind: 'open',
    });
    const closed = new BackendFailureHandler(backend, { failurePolicy: 'closed' });
    expect(closed.withoutBackend(query('u'))).toEqual({ kind: 'closed' });
    const fallback = new BackendFailureHandler(backend, { failurePolicy: 'fallback' });
    const result = fallback.withoutBackend(query('u'));
    expect(isFailureOutcome(result as ConsumeResult)).toBe(false);
    expect((result as ConsumeResult).allowed).toBe(true);
    expect(backend.calls).toBe(0);
    void fallback.close();
  });
});
