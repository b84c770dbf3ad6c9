/**
 * Checks the oracle itself where a second, even plainer reading exists: a rejected request's wait
 * is "the first later millisecond at which the same request would be admitted if nothing else
 * came" (RateLimitAlgorithm JSDoc), which a brute-force search over every later millisecond
 * finds for small windows; and with several units and blocks, `retryAfterMs` is "the time until a
 * request would really be admitted" (RateLimitBackend JSDoc): exactly then, not a millisecond
 * before. The backends are checked against the model elsewhere (test/conformance/).
 */
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import type { ConsumeQuery } from '../../lib/backends/rate-limit.backend.js';
import { RATE_LIMIT_ALGORITHMS, type RateLimitAlgorithm } from '../../lib/rules/rule-units.js';
import { ReferenceBackend } from './reference-models.js';

interface Step {
  readonly advanceMs: number;
  readonly cost: number;
}

/** A model after `steps` (each: move the clock, then one request), and the clock it ended at. */
function replay(
  algorithm: RateLimitAlgorithm,
  query: (cost: number) => ConsumeQuery,
  steps: readonly Step[],
): { model: ReferenceBackend; now: number } {
  const model = new ReferenceBackend(algorithm);
  let now = 0;
  for (const { advanceMs, cost } of steps) {
    now += advanceMs;
    model.consume(query(cost), now);
  }
  return { model, now };
}

describe('reference models', () => {
  it.each(RATE_LIMIT_ALGORITHMS)(
    '%s: a rejected request is admitted exactly retryAfterMs later, and not a millisecond before',
    (algorithm) => {
      fc.assert(
        fc.property(
          fc.record({
            units: fc.uniqueArray(
              fc.record({
                windowMs: fc.integer({ min: 1, max: 30 }),
                limit: fc.integer({ min: 1, max: 5 }),
              }),
              { minLength: 1, maxLength: 2, selector: (u) => u.windowMs },
            ),
            blockMs: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 40 })),
            burst: fc.option(fc.integer({ min: 1, max: 6 }), { nil: undefined }),
            steps: fc.array(
              fc.record({
                advanceMs: fc.integer({ min: 0, max: 12 }),
                cost: fc.integer({ min: 1, max: 3 }),
              }),
              { maxLength: 30 },
            ),
            cost: fc.integer({ min: 1, max: 4 }),
          }),
          ({ units, blockMs, burst, steps, cost }) => {
            const query = (c: number): ConsumeQuery => ({
              counter: { user: 'u', scope: 'zone:z', method: '*' },
              limits: [...units]
                .sort((a, b) => a.windowMs - b.windowMs)
                .map(({ limit, windowMs }) => ({ unit: 'window', limit, windowMs })),
              blockMs,
              algorithm,
              cost: c,
              ...(algorithm === 'token-bucket' && burst !== undefined ? { burst } : {}),
            });
            const { model, now } = replay(algorithm, query, steps);
            const decision = model.consume(query(cost), now);
            if (decision.allowed) return;
            const capacity = (limit: number): number =>
              algorithm === 'token-bucket' ? (burst ?? limit) : limit;
            const tooBig = units.filter((u) => cost > capacity(u.limit));
            if (tooBig.length > 0) {
              // Never admitted: at least that unit's window.
              for (const u of tooBig) {
                expect(decision.retryAfterMs).toBeGreaterThanOrEqual(u.windowMs);
              }
              return;
            }
            // The same history, this rejected request too (it may have started a block), then
            // the same request `dt` later.
            const admittedAfter = (dt: number): boolean => {
              const again = replay(algorithm, query, steps).model;
              again.consume(query(cost), now);
              return again.consume(query(cost), now + dt).allowed;
            };
            expect(decision.retryAfterMs).toBeGreaterThan(0);
            for (let dt = 1; dt < decision.retryAfterMs; dt++) {
              expect({ dt, admitted: admittedAfter(dt) }).toEqual({ dt, admitted: false });
            }
            expect(admittedAfter(decision.retryAfterMs)).toBe(true);
          },
        ),
        { numRuns: 400, seed: 14 },
      );
    },
  );
});
