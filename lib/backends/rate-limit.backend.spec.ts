/**
 * What the contract itself does for a backend written before `peek`, `release`, `block` and
 * `blockedFor` existed: it still compiles (the methods are not abstract) and keeps deciding, and
 * each of those methods throws, synchronously, a message that names the backend, the method and
 * the fix. The behaviour of the built-in backends is the conformance suite's (test/conformance).
 */
import { describe, expect, it } from '@jest/globals';
import { RateLimitBackend, type ConsumeQuery, type ConsumeResult } from './rate-limit.backend.js';

/** A backend as a user would have written it against the contract before these methods. */
class LegacyBackend extends RateLimitBackend {
  override consume(): ConsumeResult {
    return { allowed: true, retryAfterMs: 0, blocked: false, unit: undefined, units: [] };
  }

  override unblock(): boolean {
    return false;
  }

  override reset(): boolean {
    return false;
  }
}

/** The same, naming its instance as the JSDoc of `describe()` allows. */
class DescribedBackend extends LegacyBackend {
  override describe(): string {
    return 'DescribedBackend(shard 3)';
  }
}

const query: ConsumeQuery = {
  counter: { user: 'alice', scope: 'path:/login', method: 'POST' },
  limits: [{ unit: 'minute', limit: 5, windowMs: 60_000 }],
  blockMs: 0,
};

/** The documented message for `method` of a backend that `describe()`s itself as `backend`. */
function missing(backend: string, method: string): string {
  return (
    `${backend} does not implement ${method}(), which RateLimitAdmin and ` +
    `count: 'failures' | 'successes' rules need: implement it (see RateLimitBackend.${method}) ` +
    `or use MemoryBackend / RedisBackend.`
  );
}

describe('RateLimitBackend defaults for the methods a backend may lack', () => {
  const calls: readonly [string, (backend: RateLimitBackend) => unknown][] = [
    ['peek', (backend) => backend.peek(query)],
    ['release', (backend) => backend.release(query)],
    ['block', (backend) => backend.block('alice', 60_000)],
    ['blockedFor', (backend) => backend.blockedFor('alice')],
  ];

  for (const [method, call] of calls) {
    it(`${method}() throws, naming the backend, the method and the fix`, () => {
      expect(() => call(new LegacyBackend())).toThrow(new Error(missing('LegacyBackend', method)));
      expect(() => call(new DescribedBackend())).toThrow(
        new Error(missing('DescribedBackend(shard 3)', method)),
      );
    });
  }

  it('leaves such a backend deciding as before', async () => {
    const backend = new LegacyBackend();
    expect(await backend.consume()).toMatchObject({ allowed: true });
    expect(backend.algorithms).toEqual(['fixed-window']);
  });
});
