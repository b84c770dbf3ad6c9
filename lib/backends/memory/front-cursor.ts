/**
 * Added to the insertions (an eighth of the map) that a {@link FrontCursor} lets pass without
 * moving before it drops its iterator, so that a small map does not reopen it all the time.
 */
const CURSOR_IDLE_FLOOR = 64;

/**
 * Reads one Map from its front, one entry per {@link next} call, across calls: how eviction and
 * reclamation find the oldest entry in amortised O(1).
 *
 * Why not a new iterator each time: V8 leaves a hole where an entry was deleted until it rebuilds
 * the table, and an iterator started at the front walks every hole before the first entry. At
 * `maxKeys`, each new key deletes one entry at the front, so an iterator per eviction walked up
 * to a table's worth of holes per request: a flood of new identities cut a backend of 100,000
 * keys from some 700,000 decisions/s to about 10,000. A Map iterator stays valid while entries are
 * added and deleted, and visits an entry deleted and set again at its new place at the back;
 * kept from one call to the next, it passes each slot of the table once, and each slot was made
 * by one insertion.
 *
 * What makes the next entry the front: every entry the cursor has passed, but the last one it
 * returned, is deleted or was set again (at the back, ahead of the cursor). So callers ask for
 * the next entry only once the last one is no longer in place, and the backend never sets an
 * existing key in place (it deletes first), which would leave a live entry behind the cursor.
 *
 * An iterator also keeps alive the table it points into and every table V8 built after it, with
 * all the entries they held, until it moves again: a cursor that stood still while its map
 * churned kept every deleted key in memory (387 MB after 2 million insertions into a map of
 * 200,000). So it drops its iterator (the next call opens a new one at the front, walking the
 * holes once more) when the map took more than an eighth of its size plus
 * {@link CURSOR_IDLE_FLOOR} insertions, or a whole sweep interval passed, without it moving. V8
 * grows or compacts a table only once it is full and leaves it at most half full, so at most one
 * such table is held that way, and the walk is paid at most once per that many insertions or
 * per sweep.
 */
export class FrontCursor<K, V> {
  private iterator: Iterator<[K, V]> | undefined;
  /** Insertions into the map since the iterator last moved. */
  private idleInserts = 0;
  /** Whether the iterator moved since the last {@link swept}. */
  private movedSinceSweep = false;

  constructor(private readonly map: Map<K, V>) {}

  /** The entry after the last one returned: the front (see above); undefined for an empty map. */
  next(): [K, V] | undefined {
    if (this.map.size === 0) return undefined;
    this.idleInserts = 0;
    this.movedSinceSweep = true;
    this.iterator ??= this.map.entries();
    let step = this.iterator.next();
    if (step.done === true) {
      // Only possible if an entry was set in place behind the cursor: start over rather than
      // report an empty map (makeRoom would then never free anything).
      this.iterator = this.map.entries();
      step = this.iterator.next();
      if (step.done === true) return undefined;
    }
    return step.value;
  }

  /** To be called after each insertion into the map. */
  inserted(): void {
    if (
      this.iterator !== undefined &&
      ++this.idleInserts > (this.map.size >>> 3) + CURSOR_IDLE_FLOOR
    ) {
      this.iterator = undefined;
    }
  }

  /** To be called by each sweep: lets go of an iterator that did not move since the last one. */
  swept(): void {
    if (!this.movedSinceSweep) this.iterator = undefined;
    this.movedSinceSweep = false;
  }
}
