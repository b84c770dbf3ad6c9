/**
 * The arguments of a rule's consume calls, built once per rule: a rule's `limits` is one array for
 * the rule's life, so its decisions all find their template here, and each call only copies it
 * and fills in the keys, the block and the cost.
 *
 * @module
 */
import type { UnitLimit } from '../../rules/rule-units.js';
import type { RedisAlgorithm } from './redis-algorithms.js';
import { nonStandardWindows, unitName } from './redis-keys.js';
import type { ScriptCall } from './redis-scripts.js';

/** Where a consume call's block key is: after the script's slot and the number of keys. */
export const BLOCK_KEY_AT = 2;

/** What a consume call needs for one `limits` and burst. */
export interface ConsumeTemplate {
  /**
   * The call with its per-request slots empty: the script's slot, 1 + n keys, the keys (the
   * block, then one per unit), the block's length, the cost, then the units' arguments.
   */
  readonly call: readonly (string | number)[];
  /** Each unit's name, for its key. */
  readonly names: readonly string[];
  /** The units whose window is not their standard one (hand-built queries), for `reset()`. */
  readonly extra: readonly UnitLimit[];
}

interface Entry {
  /** The units and burst the template was built for: checked on every hit. */
  readonly seen: readonly (string | number | undefined)[];
  readonly template: ConsumeTemplate;
}

function build(
  algorithm: RedisAlgorithm,
  limits: readonly UnitLimit[],
  burst: number | undefined,
): ConsumeTemplate {
  const call: ScriptCall = ['', 1 + limits.length];
  for (let i = 0; i <= limits.length; i++) call.push(''); // the keys
  call.push(0, 1, ...algorithm.unitArgs(limits, burst));
  return { call, names: limits.map(unitName), extra: nonStandardWindows(limits) };
}

function unchanged(
  seen: readonly (string | number | undefined)[],
  limits: readonly UnitLimit[],
  burst: number | undefined,
): boolean {
  if (seen.length !== 3 * limits.length + 1 || seen[0] !== burst) return false;
  for (let i = 0; i < limits.length; i++) {
    const limit = limits[i]!;
    if (
      seen[3 * i + 1] !== limit.unit ||
      seen[3 * i + 2] !== limit.limit ||
      seen[3 * i + 3] !== limit.windowMs
    ) {
      return false;
    }
  }
  return true;
}

/**
 * The templates of one algorithm, keyed weakly by `limits` (a hand-built query's array leaves with
 * it) and checked against the units and burst on every hit (three comparisons per unit), so an
 * array changed in place after it was first seen still gets its own arguments.
 */
export class ConsumeTemplates {
  private readonly entries = new WeakMap<readonly UnitLimit[], Entry>();

  constructor(private readonly algorithm: RedisAlgorithm) {}

  /** The template for `limits` and `burst`, built on the first call (or after they changed). */
  get(limits: readonly UnitLimit[], burst: number | undefined): ConsumeTemplate {
    const entry = this.entries.get(limits);
    if (entry !== undefined && unchanged(entry.seen, limits, burst)) return entry.template;
    const seen: (string | number | undefined)[] = [burst];
    for (const limit of limits) seen.push(limit.unit, limit.limit, limit.windowMs);
    const template = build(this.algorithm, limits, burst);
    this.entries.set(limits, { seen, template });
    return template;
  }
}
