/**
 * Creates an error without capturing a stack trace. V8 walks the whole call stack when an error is
 * constructed, which costs more than the rest of a rate-limit rejection; the trace of a 429 or 503
 * thrown by the guard would only show the guard and Nest's own frames, so it is not worth it. The
 * error's `stack` is then just its first line (`Name: message`).
 */
export function withoutStackTrace<T extends Error>(create: () => T): T {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return create();
  } finally {
    Error.stackTraceLimit = limit;
  }
}
