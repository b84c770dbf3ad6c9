/**
 * The time bound of the failure policy (BackendWatchdog in backend-watchdog.ts): calls fail when
 * their partition of the backend has been quiet for the timeout while they waited, counting only
 * time in which the application could have read an answer. The policies themselves, over HTTP,
 * are in test/failure-policy.spec.ts; the per-partition breaker in failure-policy.spec.ts.
 */
import { afterEach, describe, expect, it, jest } from '@jest/globals';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { BackendTimeoutError, BackendWatchdog, WHOLE_BACKEND } from './backend-watchdog.js';

/** A promise the test settles by hand. */
function manual<T = string>(): {
  promise: Promise<T>;
  resolve: (value: T) => void;
  reject: (error: Error) => void;
} {
  let resolve!: (value: T) => void;
  let reject!: (error: Error) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** What `promise` settled with, and when, from `start`. */
async function outcome(
  promise: Promise<unknown>,
  start: number,
): Promise<{ what: string; ms: number }> {
  let what: string;
  try {
    what = String(await promise);
  } catch (error) {
    what = error instanceof BackendTimeoutError ? 'timeout' : `error: ${String(error)}`;
  }
  return { what, ms: performance.now() - start };
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Keeps the event loop busy, as a flood of requests does. */
function busy(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // spin
  }
}

describe('BackendWatchdog', () => {
  afterEach(() => {
    jest.restoreAllMocks();
  });

  it('fails the calls of a backend that stays quiet for the timeout', async () => {
    const watchdog = new BackendWatchdog(80);
    const start = performance.now();
    const first = outcome(watchdog.bound(manual().promise, WHOLE_BACKEND), start);
    await sleep(30);
    const second = outcome(watchdog.bound(manual().promise, WHOLE_BACKEND), start);
    const [a, b] = await Promise.all([first, second]);
    // Both fail together: the backend has been quiet for 80 ms with calls waiting on it, however
    // long the later call itself waited.
    expect(a.what).toBe('timeout');
    expect(b.what).toBe('timeout');
    expect(a.ms).toBeGreaterThanOrEqual(75);
    expect(a.ms).toBeLessThan(1_000);
    expect(Math.abs(a.ms - b.ms)).toBeLessThan(15);
  });

  it('never fails a call while its backend keeps answering, however long it waits', async () => {
    const watchdog = new BackendWatchdog(60);
    const start = performance.now();
    const slow = manual();
    const waited = outcome(watchdog.bound(slow.promise, WHOLE_BACKEND), start);
    // Other calls are answered every 30 ms for 300 ms: a long queue, not an outage.
    for (let i = 0; i < 10; i++) {
      const call = manual();
      const answered = watchdog.bound(call.promise, WHOLE_BACKEND);
      await sleep(30);
      call.resolve(`answer ${i}`);
      await expect(answered).resolves.toBe(`answer ${i}`);
    }
    slow.resolve('late but alive');
    const result = await waited;
    expect(result.what).toBe('late but alive');
    expect(result.ms).toBeGreaterThan(250);
  });

  it('does not count time in which the event loop was busy', async () => {
    const watchdog = new BackendWatchdog(100);
    const call = manual();
    const start = performance.now();
    const result = outcome(watchdog.bound(call.promise, WHOLE_BACKEND), start);
    // The application is busy for 3 timeouts in a row, one turn at a time: the answer comes
    // after a turn of the event loop (as a reply read from a socket would), in time. Three turns,
    // not more: a check runs at most once per turn and counts at most two ticks (half the
    // timeout), and only the first turn's check comes before the answer, whatever the OS
    // scheduler does. With a fourth turn a second check could count, if the process were
    // descheduled for a tick between two turns (as on a loaded CI machine), and reach the timeout.
    for (let turn = 0; turn < 3; turn++) {
      busy(100);
      await new Promise((resolve) => setImmediate(resolve));
    }
    call.resolve('answered');
    expect((await result).what).toBe('answered');
  });

  it('reads replies that arrived while the event loop was busy before failing anything', async () => {
    // A real socket: the reply reaches the kernel while the application is busy, and is only read
    // in the next poll phase, after the timers phase in which the watchdog's timer fires.
    const server: Server = createServer((socket) =>
      socket.on('data', (data) => socket.write(data)),
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    const socket: Socket = connect(port, '127.0.0.1');
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    try {
      const watchdog = new BackendWatchdog(50);
      for (let round = 0; round < 5; round++) {
        const reply = new Promise<string>((resolve) =>
          socket.once('data', (data) => resolve(data.toString())),
        );
        const answered = watchdog.bound(reply, WHOLE_BACKEND);
        socket.write(`ping ${round}`);
        busy(200); // four timeouts; the echo is back long before this ends
        await expect(answered).resolves.toBe(`ping ${round}`);
      }
    } finally {
      socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('still detects a dead backend while the event loop stays saturated', async () => {
    const watchdog = new BackendWatchdog(100);
    const start = performance.now();
    const result = outcome(watchdog.bound(manual().promise, WHOLE_BACKEND), start);
    let turns = 0;
    let settled = false;
    void result.then(() => (settled = true));
    while (!settled && turns < 20) {
      turns++;
      busy(150);
      await new Promise((resolve) => setImmediate(resolve));
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
    expect((await result).what).toBe('timeout');
    // One tick counts at most two ticks (50 ms) of a busy turn: a few turns, never twenty.
    expect(turns).toBeLessThanOrEqual(6);
  });

  it('keeps partitions apart: one quiet partition fails while another answers', async () => {
    const watchdog = new BackendWatchdog(60);
    const start = performance.now();
    const dead = outcome(watchdog.bound(manual().promise, 'slot 1'), start);
    const alive: Promise<{ what: string; ms: number }>[] = [];
    for (let i = 0; i < 6; i++) {
      const call = manual();
      alive.push(outcome(watchdog.bound(call.promise, 'slot 2'), start));
      await sleep(20);
      call.resolve('ok');
    }
    const waiting = manual();
    const stillAlive = outcome(watchdog.bound(waiting.promise, 'slot 2'), start);
    expect((await dead).what).toBe('timeout');
    waiting.resolve('ok');
    expect((await stillAlive).what).toBe('ok');
    expect((await Promise.all(alive)).every(({ what }) => what === 'ok')).toBe(true);
  });

  it('drops an answer or an error that arrives after the timeout', async () => {
    const watchdog = new BackendWatchdog(20);
    const late = manual();
    const lateError = manual();
    const results = await Promise.allSettled([
      watchdog.bound(late.promise, WHOLE_BACKEND),
      watchdog.bound(lateError.promise, WHOLE_BACKEND),
    ]);
    expect(results.map((result) => result.status)).toEqual(['rejected', 'rejected']);
    late.resolve('too late');
    lateError.reject(new Error('too late')); // no unhandled rejection either
    await sleep(5);
  });

  it('leaves no timer once nothing is in flight, and never holds the process open', async () => {
    const watchdog = new BackendWatchdog(10_000);
    const setTimer = jest.spyOn(globalThis, 'setTimeout');
    const clearTimer = jest.spyOn(globalThis, 'clearTimeout');
    const calls = [manual(), manual()];
    const pending = calls.map((call) => watchdog.bound(call.promise, WHOLE_BACKEND));
    const ticks = setTimer.mock.results.filter((_, i) => setTimer.mock.calls[i]![1] === 2_500);
    expect(ticks).toHaveLength(1); // one timer for both calls, ticking every timeout / 4
    const timer = ticks[0]!.value as NodeJS.Timeout;
    expect(timer.hasRef()).toBe(false);
    calls[0]!.resolve('a');
    await pending[0];
    expect(clearTimer).not.toHaveBeenCalledWith(timer); // one call still in flight
    calls[1]!.resolve('b');
    await pending[1];
    expect(clearTimer).toHaveBeenCalledWith(timer);
    // A new call arms a new timer.
    const next = manual();
    const answered = watchdog.bound(next.promise, WHOLE_BACKEND);
    expect(setTimer.mock.calls.filter(([, ms]) => ms === 2_500)).toHaveLength(2);
    next.resolve('c');
    await answered;
  });

  it('keeps the queue about as long as the calls in flight, answers in or out of order', async () => {
    const watchdog = new BackendWatchdog(5_000);
    const queueLength = (): number =>
      (Reflect.get(Reflect.get(watchdog, 'whole') as object, 'queue') as unknown[]).length;
    const calls: ReturnType<typeof manual<string>>[] = [];
    const results: Promise<string>[] = [];
    const longest: number[] = [];
    for (let round = 0; round < 50; round++) {
      const from = calls.length;
      for (let i = 0; i < 100; i++) {
        const call = manual();
        calls.push(call);
        results.push(watchdog.bound(call.promise, WHOLE_BACKEND));
      }
      // Answer the previous round's last call, then this round's calls but its last one, odd
      // ones first: a call is always in flight, so the queue is never simply dropped.
      if (from > 0) calls[from - 1]!.resolve('ok');
      const last = calls.length - 1;
      for (let i = from + 1; i < last; i += 2) calls[i]!.resolve('ok');
      for (let i = from; i < last; i += 2) calls[i]!.resolve('ok');
      await new Promise((resolve) => setImmediate(resolve));
      longest.push(queueLength());
    }
    calls.at(-1)!.resolve('ok');
    const all = await Promise.all(results);
    expect(all.every((result) => result === 'ok')).toBe(true);
    expect(Math.max(...longest)).toBeLessThanOrEqual(200);
    expect(queueLength()).toBe(0);
  });
});
