/**
 * Child processes of the benchmark: every one is tracked, stopped by PID when its work is done,
 * and SIGKILLed if the benchmark exits in any other way (an error, Ctrl-C, a kill).
 *
 * @module
 */
import { fork, type ChildProcess } from 'node:child_process';

/** How much of a child's output is kept for error messages. */
const OUTPUT_TAIL_CHARS = 8_192;

const live = new Set<ChildProcess>();
let hooksInstalled = false;

function killAll(): void {
  for (const child of live) {
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
  live.clear();
}

/**
 * Installs the hooks once: on `exit` every child left is SIGKILLed; SIGINT, SIGTERM and SIGHUP
 * turn into a normal exit (so the `exit` hooks of this module and the Redis harness run).
 */
export function installExitHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', killAll);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      console.error(`\nbench: ${signal}, stopping every child process and Redis server`);
      process.exit(130);
    });
  }
}

/** A forked Node child with an IPC channel, its output tail and a promise of its exit. */
export interface TrackedChild {
  readonly process: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** The tail of the child's stdout and stderr. */
  output(): string;
  /** Asks nothing: SIGTERM, then SIGKILL after `graceMs`; resolves once it has exited. */
  kill(graceMs?: number): Promise<void>;
}

export function forkTracked(
  modulePath: string,
  args: readonly string[],
  options: { execArgv?: readonly string[]; env?: NodeJS.ProcessEnv } = {},
): TrackedChild {
  installExitHooks();
  const child = fork(modulePath, [...args], {
    execArgv: [...(options.execArgv ?? [])],
    env: options.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  live.add(child);
  let tail = '';
  const keep = (chunk: Buffer): void => {
    tail = (tail + chunk.toString('utf8')).slice(-OUTPUT_TAIL_CHARS);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      live.delete(child);
      resolve({ code, signal });
    });
  });
  const kill = async (graceMs = 3_000): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    try {
      await exited;
    } finally {
      clearTimeout(timer);
    }
  };
  return { process: child, exited, output: () => tail, kill };
}

/**
 * Waits for the first IPC message that `pick` accepts, at most `timeoutMs`. Rejects early, with
 * the child's output, when the child exits first, and with what `pick` throws.
 */
export function waitForMessage<T>(
  child: TrackedChild,
  what: string,
  timeoutMs: number,
  pick: (message: unknown) => T | undefined,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const cleanup = (): void => {
      clearTimeout(timer);
      child.process.off('message', onMessage);
      child.process.off('exit', onExit);
    };
    const onMessage = (message: unknown): void => {
      let value: T | undefined;
      try {
        value = pick(message);
      } catch (error) {
        cleanup();
        reject(error instanceof Error ? error : new Error(String(error)));
        return;
      }
      if (value === undefined) return;
      cleanup();
      resolve(value);
    };
    const onExit = (code: number | null, signal: NodeJS.Signals | null): void => {
      cleanup();
      reject(
        new Error(
          `${what}: the child exited first (code ${code}, signal ${signal})\n--- output ---\n` +
            `${child.output().trim()}\n---`,
        ),
      );
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(
        new Error(
          `${what}: no answer within ${timeoutMs} ms\n--- output ---\n${child.output().trim()}\n---`,
        ),
      );
    }, timeoutMs);
    child.process.on('message', onMessage);
    child.process.once('exit', onExit);
    if (child.process.exitCode !== null || child.process.signalCode !== null) {
      onExit(child.process.exitCode, child.process.signalCode);
    }
  });
}
