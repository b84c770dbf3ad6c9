import { FrontCursor } from './front-cursor.js';
import type { UnitCounter } from './unit-counter.js';

/**
 * The entries of one algorithm for one unit (one window length), keyed by `counterKey`. An entry
 * is set at the back whenever it is new or its counter says it moved on (a fixed window that
 * starts again, a two-window counter entering a new window, a log or bucket whose placement is a
 * window old), so the map is ordered by {@link UnitCounter.placedAt} and the entries that expire
 * first are at the front (exactly for fixed and sliding windows, within the documented delay for
 * logs and buckets, whose expiry moves while they stay in place).
 */
export class EntryStore<E> {
  readonly entries = new Map<string, E>();
  private readonly cursor = new FrontCursor(this.entries);
  /**
   * The front entry as the cursor returned it, kept because finding out whether it has expired
   * must not take it off the cursor. Checked on each use: deleted since (reclaimed, evicted,
   * reset), or set at the back again, which changes its placement.
   */
  private frontKey = '';
  private frontEntry: E | undefined = undefined;
  private frontPlaced = 0;

  /**
   * @param counter the algorithm of every entry here
   * @param windowMs the window length of every entry here
   * @param beforeNewEntry called before a key new to the store is set (the backend makes room)
   */
  constructor(
    readonly counter: UnitCounter<E>,
    readonly windowMs: number,
    private readonly beforeNewEntry: (now: number) => void,
  ) {}

  /** The entry placed earliest, or undefined when there is none. Amortised O(1). */
  front(): E | undefined {
    const cached = this.frontEntry;
    if (
      cached !== undefined &&
      this.counter.placedAt(cached, this.windowMs) === this.frontPlaced &&
      this.entries.get(this.frontKey) === cached
    ) {
      return cached;
    }
    const next = this.cursor.next();
    if (next === undefined) {
      this.frontEntry = undefined;
      return undefined;
    }
    const [key, entry] = next;
    this.frontKey = key;
    this.frontEntry = entry;
    this.frontPlaced = this.counter.placedAt(entry, this.windowMs);
    return entry;
  }

  /** When the front entry was placed; call after {@link front} returned an entry. */
  frontPlacedAt(): number {
    return this.frontPlaced;
  }

  /** Whether `entry` has expired at `now`. */
  expired(entry: E, now: number): boolean {
    return this.counter.expiresAt(entry, this.windowMs) <= now;
  }

  /** Deletes the entry {@link front} returned last. */
  deleteFront(): void {
    this.entries.delete(this.frontKey);
    this.frontKey = '';
    this.frontEntry = undefined;
  }

  /**
   * Sets `entry` at the back, making room first when `key` is new to the store. Deleting first
   * is what moves an existing entry to the back (a Map keeps a key's place on set), and the front
   * cursor relies on it.
   */
  place(key: string, entry: E, now: number): void {
    if (!this.entries.delete(key)) this.beforeNewEntry(now);
    this.append(key, entry);
  }

  /** Sets an entry at the back; `key` must not be in the store (delete it first). */
  append(key: string, entry: E): void {
    this.entries.set(key, entry);
    this.cursor.inserted();
  }

  /** Drops every expired entry at the front. Amortised O(1) per entry dropped. */
  reclaimExpired(now: number): void {
    let front = this.front();
    while (front !== undefined && this.expired(front, now)) {
      this.deleteFront();
      front = this.front();
    }
  }

  /** See {@link FrontCursor.swept}. */
  swept(): void {
    this.cursor.swept();
  }
}
