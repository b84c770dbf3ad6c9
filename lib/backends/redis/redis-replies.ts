/**
 * How the Redis backends decode their scripts' replies, checking every value: a reply that is not
 * what the scripts return (a proxy in between, another program's script under the same SHA1, a
 * bug) fails the call, and the failure policy decides, rather than a wrong decision.
 *
 * @module
 */
import type { UnitLimit } from '../../rules/rule-units.js';
import type { ConsumeResult, PeekResult, UnitState } from '../rate-limit.backend.js';

/** What a consume reply is checked against, besides the units: what the query asked for. */
export interface ReplyExpectations {
  /** The request's cost; 1 when undefined. */
  readonly cost?: number | undefined;
  /**
   * Token bucket: the bucket's size, the most a unit can report as remaining and the base of the
   * packed reply; undefined: each unit's limit.
   */
  readonly capacity?: number | undefined;
  /**
   * True (the default) when an exhausted unit's reset never comes after the request's wait, as for
   * a fixed window and a sliding log; a token bucket (full again only later) and a weighted
   * counter (whose window may end before the request fits) report resets beyond it.
   */
  readonly resetWithinWait?: boolean;
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
 * An admitted request's reply under one unit, packed by the script into `resetMs * (capacity + 1)
 * + remaining`, where the capacity is the unit's limit (a bucket's size for a token bucket).
 */
function parsePackedReply(
  backend: string,
  reply: number,
  limits: readonly UnitLimit[],
  capacity: number | undefined,
): ConsumeResult {
  const limit = limits.length === 1 ? limits[0]! : undefined;
  const size = capacity ?? limit?.limit;
  if (limit === undefined || !isCount(reply) || !isCount(size)) throw malformed(backend, reply);
  const base = size + 1; // as the script packed it
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
 * no unit; a rejected one has a wait, and names the exhausted unit with the longest wait (less
 * than the cost left, and, where the algorithm says so, a reset within the wait) unless no unit
 * is exhausted, which only a running block can reject (then every unit has requests left).
 *
 * @throws Error when the reply does not have that shape
 */
export function parseConsumeReply(
  backend: string,
  reply: unknown,
  limits: readonly UnitLimit[],
  expected: ReplyExpectations = {},
): ConsumeResult {
  if (typeof reply === 'number') return parsePackedReply(backend, reply, limits, expected.capacity);
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
  const cost = expected.cost ?? 1;
  // A cost above what the unit ever holds is rejected however much is left.
  const capacity = expected.capacity ?? named?.limit ?? 0;
  const fits = cost <= capacity && named !== undefined && named.limit > 0;
  if (
    named === undefined
      ? noneLeft
      : (fits && named.remaining >= cost) ||
        (expected.resetWithinWait !== false && fits && named.resetMs > retryAfterMs)
  ) {
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
 * Turns a peek script's reply (lua/peek.lua: `{block ms left, the reply of a consume call that
 * no unit could admit}`) into a {@link PeekResult}, checking every value: the consume reply as
 * {@link parseConsumeReply} does (with `expected.cost` the cost no unit holds), and that it is a
 * rejection that saw the block if there is one.
 *
 * @throws Error when the reply does not have that shape
 */
export function parsePeekReply(
  backend: string,
  reply: unknown,
  limits: readonly UnitLimit[],
  expected: ReplyExpectations,
): PeekResult {
  if (!Array.isArray(reply) || reply.length !== 2) throw malformed(backend, reply);
  const blockedMs: unknown = reply[0];
  if (!isCount(blockedMs)) throw malformed(backend, reply);
  const decision = parseConsumeReply(backend, reply[1], limits, expected);
  // Read after the decision: a block it did not see cannot appear (nothing else runs meanwhile),
  // but one it saw may have ended by then, should Redis's clock move during a script.
  if (decision.allowed || (!decision.blocked && blockedMs > 0)) throw malformed(backend, reply);
  return { blockedMs, units: decision.units };
}

/**
 * Turns a reply that is a number of milliseconds (lua/blocked-for.lua) into a number.
 *
 * @throws Error when the reply is anything else
 */
export function parseMsReply(backend: string, reply: unknown): number {
  if (!isCount(reply)) throw malformed(backend, reply);
  return reply;
}
