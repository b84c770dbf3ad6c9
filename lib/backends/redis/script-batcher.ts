/**
 * Sends the consume calls (and the release calls) of one event-loop iteration as few script calls
 * as possible: the calls made for one script (one algorithm's consume or release, one clock) and
 * one hash slot go as one batch (lua/batch.lua) at the end of the iteration, in the order they
 * were made; a call alone in its group goes as it is. Redis runs a script at a time, so each
 * decision of a batch is as atomic as a lone call, and decides exactly as it would have in that
 * order.
 *
 * Why: a decision's cost, on Redis and in ioredis, is mostly per call (the command's dispatch and
 * argument tables, a socket write and read, ioredis's command object and reply), not per command
 * the script runs; see bench/MISSES.md for the measurements.
 *
 * @module
 */
import type { RedisClientLike } from './redis-client.js';
import { runScript, type RedisScript, type ScriptCall } from './redis-scripts.js';

/**
 * The most decisions in one batch: a batch runs as one script, during which Redis serves nobody
 * else, so it is kept to well under a millisecond (a decision costs a few microseconds there).
 */
export const MAX_BATCH = 64;

interface Pending {
  readonly call: ScriptCall;
  resolve(reply: unknown): void;
  reject(error: unknown): void;
}

interface Group {
  readonly client: RedisClientLike;
  readonly single: RedisScript;
  readonly batch: RedisScript;
  readonly pending: Pending[];
}

/** Thrown for every decision of a batch whose reply is not one reply per decision. */
function malformedBatch(owner: string, reply: unknown, size: number): Error {
  const shape = Array.isArray(reply) ? `${reply.length} replies` : typeof reply;
  return new Error(`${owner}: unexpected reply to a batch of ${size} decisions: ${shape}`);
}

export class ScriptBatcher {
  /** The groups of the current iteration, by script, then by hash slot (0 on a single node). */
  private groups = new Map<RedisScript, Map<number, Group>>();
  private scheduled = false;

  /** @param owner the backend's name, for error messages */
  constructor(private readonly owner: string) {}

  /**
   * Queues one call (`call` as for `runScript`: the script's slot, the number of keys, the keys,
   * then the arguments) and resolves to its reply, as `runScript(client, single, call)` would.
   * @param slot the hash slot of the call's keys (every key of a call shares one); 0 on a single node
   */
  submit(
    client: RedisClientLike,
    single: RedisScript,
    batch: RedisScript,
    call: ScriptCall,
    slot: number,
  ): Promise<unknown> {
    return new Promise((resolve, reject) => {
      let bySlot = this.groups.get(single);
      if (bySlot === undefined) {
        bySlot = new Map();
        this.groups.set(single, bySlot);
      }
      let group = bySlot.get(slot);
      if (group === undefined) {
        group = { client, single, batch, pending: [] };
        bySlot.set(slot, group);
      }
      group.pending.push({ call, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        // In the iteration's check phase, after every I/O callback of its poll phase: each HTTP
        // request (or each reply that wakes a caller) is its own callback, and a tick or a
        // microtask would flush after each one, so batches of one.
        setImmediate(this.flush);
      }
    });
  }

  private readonly flush = (): void => {
    this.scheduled = false;
    const groups = this.groups;
    this.groups = new Map();
    for (const bySlot of groups.values()) {
      for (const group of bySlot.values()) {
        const { pending } = group;
        for (let start = 0; start < pending.length; start += MAX_BATCH) {
          this.send(group, pending.slice(start, start + MAX_BATCH));
        }
      }
    }
  };

  private send(group: Group, chunk: Pending[]): void {
    if (chunk.length === 1) {
      const only = chunk[0]!;
      runScript(group.client, group.single, only.call).then(only.resolve, only.reject);
      return;
    }
    runScript(group.client, group.batch, batchCall(chunk)).then(
      (reply) => {
        if (!Array.isArray(reply) || reply.length !== chunk.length) {
          const error = malformedBatch(this.owner, reply, chunk.length);
          for (const pending of chunk) pending.reject(error);
          return;
        }
        for (let i = 0; i < chunk.length; i++) {
          const one: unknown = reply[i];
          if (one instanceof Error) chunk[i]!.reject(one);
          else chunk[i]!.resolve(one);
        }
      },
      (error: unknown) => {
        for (const pending of chunk) pending.reject(error);
      },
    );
  }
}

/** One call for `chunk`: every decision's keys, then the count and each decision's arguments. */
function batchCall(chunk: readonly Pending[]): ScriptCall {
  const call: ScriptCall = ['', 0];
  const args: (string | number)[] = [chunk.length];
  let keyCount = 0;
  for (const { call: one } of chunk) {
    const keys = one[1] as number;
    for (let i = 2; i < 2 + keys; i++) call.push(one[i]!);
    keyCount += keys;
    args.push(keys, one.length - 2 - keys);
    for (let i = 2 + keys; i < one.length; i++) args.push(one[i]!);
  }
  call[1] = keyCount;
  for (const arg of args) call.push(arg);
  return call;
}
