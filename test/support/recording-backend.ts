import {
  RATE_LIMIT_ALGORITHMS,
  RateLimitBackend,
  type ConsumeQuery,
  type ConsumeResult,
  type RateLimitAlgorithm,
  type UnitLimit,
} from 'nestjs-ratelimit';

/**
 * A backend of the kind an application writes itself: it admits every request and keeps the
 * queries it receives, so a test sees exactly what the module sends. Its default algorithm and
 * the algorithms it claims to implement are the test's to choose.
 */
export class RecordingBackend extends RateLimitBackend {
  readonly queries: ConsumeQuery[] = [];
  /** What the module passed to `knowUnits()`, in order. */
  readonly knownUnits: (readonly UnitLimit[])[] = [];

  constructor(
    private readonly defaultAlgorithm: RateLimitAlgorithm = 'fixed-window',
    private readonly implemented: readonly RateLimitAlgorithm[] = RATE_LIMIT_ALGORITHMS,
  ) {
    super();
  }

  override get algorithm(): RateLimitAlgorithm {
    return this.defaultAlgorithm;
  }

  override get algorithms(): readonly RateLimitAlgorithm[] {
    return this.implemented;
  }

  consume(query: ConsumeQuery): ConsumeResult {
    this.queries.push(query);
    const units = query.limits.map((limit) => ({
      ...limit,
      remaining: limit.limit,
      resetMs: limit.windowMs,
    }));
    return { allowed: true, retryAfterMs: 0, blocked: false, unit: undefined, units };
  }

  override knowUnits(limits: readonly UnitLimit[]): void {
    this.knownUnits.push(limits);
  }

  unblock(): boolean {
    return false;
  }

  reset(): boolean {
    return false;
  }

  override describe(): string {
    return `RecordingBackend(${this.defaultAlgorithm})`;
  }
}
