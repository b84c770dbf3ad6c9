import {
  standardWindowMs,
  type RateLimitUnitName,
  type UnitLimit,
} from '../../rules/rule-units.js';
import { EntryStore } from './entry-store.js';
import type { UnitCounter } from './unit-counter.js';

/**
 * The stores of one algorithm in one backend: one {@link EntryStore} per unit name and window
 * length, so a store never mixes window lengths (it stays ordered) and a window of any length
 * (`'window'`, or a named unit with a length of its own) keeps its own counters. Finding the store
 * of a unit allocates nothing: rules' named units hit the first lookup.
 */
export class AlgorithmStores {
  /** Each named unit's store for its standard length. */
  private readonly standard = new Map<RateLimitUnitName, EntryStore<unknown>>();
  /** The other stores, by unit name, then window length. */
  private readonly other = new Map<RateLimitUnitName, Map<number, EntryStore<unknown>>>();

  /**
   * @param counter the algorithm
   * @param created called with every store this creates (the backend keeps a list of all)
   * @param beforeNewEntry given to every store (see {@link EntryStore})
   */
  constructor(
    readonly counter: UnitCounter<unknown>,
    private readonly created: (store: EntryStore<unknown>) => void,
    private readonly beforeNewEntry: (now: number) => void,
  ) {}

  /**
   * The last unit looked up and its store. A rule's units are one frozen array, so the units of
   * the rule decided last (and most rules have one unit) skip the lookup: measured, the `Map`
   * lookup by unit name was worth some 5% of a decision on 100,000 keys.
   */
  private lastLimit: UnitLimit | undefined;
  private lastStore: EntryStore<unknown> | undefined;

  /** The store of one unit, created on first use. */
  storeFor(limit: UnitLimit): EntryStore<unknown> {
    const last = this.lastStore;
    if (limit === this.lastLimit && last!.windowMs === limit.windowMs) return last!;
    const standard = this.standard.get(limit.unit);
    const store =
      standard !== undefined && standard.windowMs === limit.windowMs
        ? standard
        : this.otherStore(limit);
    this.lastLimit = limit;
    this.lastStore = store;
    return store;
  }

  private otherStore(limit: UnitLimit): EntryStore<unknown> {
    const { unit, windowMs } = limit;
    if (windowMs === standardWindowMs(unit)) return this.create(limit, this.standard, unit);
    let byLength = this.other.get(unit);
    if (byLength === undefined) {
      byLength = new Map();
      this.other.set(unit, byLength);
    }
    return byLength.get(windowMs) ?? this.create(limit, byLength, windowMs);
  }

  private create<K>(
    limit: UnitLimit,
    into: Map<K, EntryStore<unknown>>,
    key: K,
  ): EntryStore<unknown> {
    const store = new EntryStore(this.counter, limit.windowMs, this.beforeNewEntry);
    into.set(key, store);
    this.created(store);
    return store;
  }
}
