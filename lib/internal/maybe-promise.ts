/** A value now, or later. */
export type MaybePromise<T> = T | Promise<T>;

/**
 * Continues with `next` at once when `value` is already there, or when it settles. The memory
 * backend, the IP resolver and the rule selection are all synchronous; chaining them without
 * `await` keeps a request that needs nothing asynchronous free of promise allocations and
 * microtask hops on the hot path.
 */
export function andThen<T, R>(
  value: MaybePromise<T>,
  next: (value: T) => MaybePromise<R>,
): MaybePromise<R> {
  return value instanceof Promise ? value.then(next) : next(value);
}
