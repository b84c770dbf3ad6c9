/** Thrown when the backend gave no sign of life for `backendTimeoutMs` while a request waited. */
export class BackendTimeoutError extends Error {
  constructor(ms: number) {
    super(`The rate-limit backend did not answer for ${ms} ms while requests waited on it`);
    this.name = 'BackendTimeoutError';
  }
}

/** A call waiting for the backend. */
interface PendingCall {
  /** Rejects the caller's promise; cleared once the call settled either way. */
  fail: ((error: BackendTimeoutError) => void) | undefined;
}

/** The calls in flight to one partition of the backend, oldest first. */
class PartitionCalls {
  /** Calls in start order; the slots before `head` are settled. */
  queue: PendingCall[] = [];
  head = 0;
  /** Calls not settled yet. */
  inFlight = 0;
  /** How long the partition has been quiet while calls waited, counting only {@link BackendWatchdog} ticks. */
  quietMs = 0;
  /** `performance.now()` up to which {@link quietMs} is counted: the last answer, call or tick. */
  countedTo = 0;
}

/** The partition of a backend that fails as one (see `RateLimitBackend.partitionOf`). */
export const WHOLE_BACKEND = '';

/** Ticks per timeout: how finely the quiet time of the partitions is counted. */
const TICKS_PER_TIMEOUT = 4;

/** Most quiet time one tick counts, in ticks: a longer gap means the event loop was busy. */
const MAX_TICKS_COUNTED = 2;

/**
 * Bounds how long requests wait on a backend that has stopped answering, without ever failing a
 * call only because the application itself is busy.
 *
 * A call is not failed because it took `ms`: it is failed when its partition of the backend (the
 * whole backend, or one Redis Cluster hash slot; see `RateLimitBackend.partitionOf`) has given no
 * answer at all for `ms` while calls waited on it, counting only the time in which the application
 * could have read an answer. Under a flood, the application's own event loop can take longer than
 * `ms` to get back to replies Redis sent long ago, or even to send the commands it queued;
 * measuring each call's latency would then make a busy application look like a dead backend, and
 * the failure policy would let the flood through (`'open'`). Three rules keep that from happening:
 *
 * - A partition that keeps answering is alive, however long its queue: every answer restarts its
 *   quiet time. Redis answers the commands of one connection in order.
 * - Time the event loop was busy does not count: the quiet time is counted by a timer that ticks
 *   every `ms / 4` while calls are in flight, and one tick counts at most two ticks' worth, however
 *   late it fires. A backend that is really gone is still detected after `ms` of a responsive event
 *   loop, and within a few turns of a saturated one.
 * - Replies that have arrived are read before anything is counted or failed: a tick fires in the
 *   event loop's timers phase, before it polls for I/O, so it is deferred with `setImmediate` to
 *   the same turn's check phase, after the poll phase has handed every arrived reply to the client.
 *
 * Cost per call: one `performance.now()` at start and at settle, one queue slot. One timer for the
 * whole backend while calls are in flight, cleared once none is (and unref'd, so it never keeps the
 * process alive).
 */
export class BackendWatchdog {
  /** The whole backend, or its partition `''`: the only one of an unpartitioned backend. */
  private readonly whole = new PartitionCalls();
  /** Other partitions, while they have calls in flight. */
  private readonly partitions = new Map<string, PartitionCalls>();
  /** Calls in flight, over every partition. */
  private inFlight = 0;
  private readonly tickMs: number;
  private timer: NodeJS.Timeout | undefined;
  /** True between a tick firing and its deferred check. */
  private checking = false;

  constructor(private readonly ms: number) {
    this.tickMs = Math.max(1, ms / TICKS_PER_TIMEOUT);
  }

  /**
   * `result`, or a {@link BackendTimeoutError} once `partition` has been quiet for `ms` while
   * this call waited.
   */
  bound<T>(result: Promise<T>, partition: string): Promise<T> {
    const calls = partition === WHOLE_BACKEND ? this.whole : this.callsOf(partition);
    return new Promise<T>((resolve, reject) => {
      const call: PendingCall = { fail: reject };
      if (calls.inFlight === 0) {
        calls.quietMs = 0;
        calls.countedTo = performance.now();
      }
      calls.queue.push(call);
      calls.inFlight++;
      if (this.inFlight++ === 0 && !this.checking) this.arm();
      result.then(
        (value) => {
          if (this.settle(calls, partition, call)) resolve(value);
        },
        (error: unknown) => {
          if (this.settle(calls, partition, call)) reject(error);
        },
      );
    });
  }

  private callsOf(partition: string): PartitionCalls {
    let calls = this.partitions.get(partition);
    if (calls === undefined) {
      calls = new PartitionCalls();
      this.partitions.set(partition, calls);
    }
    return calls;
  }

  /** Marks `call` answered; false when it was failed already (its late answer is dropped). */
  private settle(calls: PartitionCalls, partition: string, call: PendingCall): boolean {
    if (call.fail === undefined) return false;
    call.fail = undefined;
    calls.inFlight--;
    if (calls.inFlight === 0) this.release(calls, partition);
    else {
      calls.quietMs = 0;
      calls.countedTo = performance.now();
      if (calls.queue[calls.head] === call) dropSettled(calls);
    }
    if (--this.inFlight === 0 && this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    return true;
  }

  /** A partition with nothing in flight keeps no queue (and no map entry). */
  private release(calls: PartitionCalls, partition: string): void {
    calls.queue = [];
    calls.head = 0;
    if (partition !== WHOLE_BACKEND) this.partitions.delete(partition);
  }

  private arm(): void {
    this.timer = setTimeout(this.tick, Math.ceil(this.tickMs));
    this.timer.unref();
  }

  /** Timers phase: the replies that have arrived are not read yet, so count after the poll phase. */
  private readonly tick = (): void => {
    this.timer = undefined;
    this.checking = true;
    setImmediate(this.check);
  };

  /** Counts the quiet time of every partition; fails those quiet for `ms`. */
  private readonly check = (): void => {
    this.checking = false;
    const now = performance.now();
    this.count(this.whole, WHOLE_BACKEND, now);
    for (const [partition, calls] of this.partitions) this.count(calls, partition, now);
    if (this.inFlight > 0) this.arm();
  };

  /** Adds the time since it was last counted (at most two ticks) to a partition's quiet time. */
  private count(calls: PartitionCalls, partition: string, now: number): void {
    if (calls.inFlight === 0) return;
    calls.quietMs += Math.min(now - calls.countedTo, MAX_TICKS_COUNTED * this.tickMs);
    calls.countedTo = now;
    if (calls.quietMs < this.ms) return;
    const { queue, head } = calls;
    this.inFlight -= calls.inFlight;
    calls.inFlight = 0;
    this.release(calls, partition);
    for (let i = head; i < queue.length; i++) {
      const fail = queue[i]!.fail;
      if (fail === undefined) continue;
      queue[i]!.fail = undefined;
      fail(new BackendTimeoutError(this.ms));
    }
  }
}

/** Moves `head` past the settled calls at the front, and compacts the queue now and then. */
function dropSettled(calls: PartitionCalls): void {
  const { queue } = calls;
  let head = calls.head;
  while (head < queue.length && queue[head]!.fail === undefined) head++;
  // Compact once the settled slots are at least half the queue: amortised O(1) per call, and
  // settled calls stay referenced for a short while only.
  if (head >= 64 && head * 2 >= queue.length) {
    queue.copyWithin(0, head);
    queue.length -= head;
    head = 0;
  }
  calls.head = head;
}
