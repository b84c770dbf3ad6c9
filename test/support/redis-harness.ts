/**
 * Test harness that starts real `redis-server` processes (a single node or a 3-master cluster) on
 * free loopback ports, for tests of the Redis backend. Nothing here is a mock: every handle points
 * at a real server the harness spawned itself (or, for {@link startRedisServer} only, at the
 * loopback server named by `REDIS_URL`).
 *
 * Guarantees:
 * - only 127.0.0.1 is ever bound or connected to;
 * - every wait and every loop is bounded by a count and a time, and fails with a message that
 *   says what it was waiting for, plus the tail of the server's own output;
 * - a missing `redis-server` / `redis-cli` fails loudly with an install hint, never a skip;
 * - servers die with the test process: `stop()` kills by PID and removes the temp dir, a
 *   `process.on('exit')` hook SIGKILLs whatever is left, and on Linux each server is started
 *   through `setpriv --pdeathsig KILL` so the kernel kills it even if the Jest worker is killed
 *   (Jest's sandboxed `process` never emits `exit`, so the hook alone is not enough under Jest).
 *
 * @module
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { accessSync, constants as fsConstants, rmSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { runInThisContext } from 'node:vm';

/** The only address the harness binds or connects to. */
export const LOOPBACK_HOST = '127.0.0.1';

/** How to get the Redis binaries; part of every "not installed" error. */
export const REDIS_INSTALL_HINT =
  'Install Redis so that `redis-server` and `redis-cli` are on PATH: ' +
  '`apt-get install redis-server` on Debian/Ubuntu (it brings redis-cli too), ' +
  '`brew install redis` on macOS. Tests that need Redis never skip themselves.';

/** Redis Cluster's fixed offset from a node's client port to its cluster-bus port. */
export const CLUSTER_BUS_PORT_OFFSET = 10_000;

/** Number of hash slots in a Redis Cluster. */
export const CLUSTER_SLOTS = 16_384;

const START_TIMEOUT_MS = 5_000;
const STOP_GRACE_MS = 3_000;
const KILL_WAIT_MS = 3_000;
const PING_TIMEOUT_MS = 500;
const POLL_INTERVAL_MS = 25;
const PORT_PROBE_TIMEOUT_MS = 2_000;
const PORT_ATTEMPTS = 3;
const CLUSTER_PORT_PICK_ATTEMPTS = 100;
const CLUSTER_NODE_TIMEOUT_MS = 2_000;
const CLUSTER_CREATE_TIMEOUT_MS = 20_000;
const CLUSTER_READY_TIMEOUT_MS = 15_000;
const CLUSTER_POLL_INTERVAL_MS = 100;
const OUTPUT_TAIL_CHARS = 8_192;
const REPLY_MAX_BYTES = 1_048_576;

/** A loopback `host:port` pair, as ioredis takes it. */
export interface RedisNodeAddress {
  readonly host: string;
  readonly port: number;
}

/** Options for {@link startRedisServer} and {@link startOwnedRedisServer}. */
export interface StartRedisServerOptions {
  /** Extra `redis-server` command-line arguments, appended after the harness's own. */
  readonly extraArgs?: readonly string[];
  /** How long to wait for the first PONG; 5 000 ms unless told. */
  readonly startTimeoutMs?: number;
}

/** A Redis server a test can talk to: harness-started, or external through `REDIS_URL`. */
export interface RedisServerHandle extends RedisNodeAddress {
  /** `redis://127.0.0.1:<port>` (or `REDIS_URL` as given, for an external server). */
  readonly url: string;
  /** PID of the current `redis-server` process; `undefined` for an external server. */
  readonly pid: number | undefined;
  /** `true` when the handle points at `REDIS_URL` rather than a process the harness owns. */
  readonly external: boolean;
  /** Stops the server (SIGTERM, then SIGKILL after a bounded wait) and removes its temp dir. Idempotent. No-op for an external server. */
  stop(): Promise<void>;
  /** Kills the server hard (SIGKILL unless told) and waits until it has exited. Throws for an external server. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts the server again on the same port (and dir) and waits until it answers PING. Throws for an external server. */
  restart(): Promise<void>;
}

/** A server the harness spawned itself: it can always be killed, paused and restarted. */
export interface OwnedRedisServerHandle extends RedisServerHandle {
  readonly pid: number;
  readonly external: false;
  /** The server's fresh temp dir (`--dir`); removed by `stop()`. */
  readonly dir: string;
  /** Freezes the process (SIGSTOP): connections stay open but nothing is answered, as for a hung server. */
  pause(): Promise<void>;
  /** Resumes a paused process (SIGCONT). */
  resume(): Promise<void>;
  /** The tail of the server's stdout/stderr (bounded), for diagnostics. */
  output(): string;
}

/** A running 3-master Redis Cluster (no replicas). */
export interface RedisClusterHandle {
  /** The masters' addresses; any of them works as an ioredis `Cluster` startup node. */
  readonly nodes: readonly RedisNodeAddress[];
  /** The masters' server handles, in the same order as `nodes`, for failure tests. */
  readonly servers: readonly OwnedRedisServerHandle[];
  /** The master that serves `slot` (0..16383), as assigned when the cluster was created. */
  nodeFor(slot: number): RedisNodeAddress;
  /** Stops every node and removes their temp dirs. Idempotent. */
  stop(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// Small utilities
// ---------------------------------------------------------------------------------------------

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function errnoCode(error: unknown): string | undefined {
  if (typeof error === 'object' && error !== null && 'code' in error) {
    const { code } = error as { code: unknown };
    return typeof code === 'string' ? code : undefined;
  }
  return undefined;
}

/**
 * Calls `attempt` until it returns a value other than `undefined`, at most `ceil(timeoutMs /
 * intervalMs) + 1` times and for at most `timeoutMs`. An error thrown by `attempt` aborts the wait.
 */
async function pollUntil<T>(
  what: string,
  timeoutMs: number,
  intervalMs: number,
  attempt: () => Promise<T | undefined>,
  lastState: () => string = () => '',
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  const maxAttempts = Math.ceil(timeoutMs / intervalMs) + 1;
  for (let i = 0; i < maxAttempts && Date.now() <= deadline; i++) {
    const value = await attempt();
    if (value !== undefined) return value;
    await sleep(Math.max(0, Math.min(intervalMs, deadline - Date.now())));
  }
  const state = lastState();
  throw new Error(
    `Timed out after ${timeoutMs} ms waiting for ${what}${state ? `: ${state}` : ''}`,
  );
}

/** Looks `name` up on PATH like `which` does; `undefined` when it is not there. */
function findExecutable(name: string): string | undefined {
  const dirs = (process.env['PATH'] ?? '').split(delimiter).filter((dir) => dir.length > 0);
  for (const dir of dirs.slice(0, 256)) {
    const candidate = join(dir, name);
    try {
      accessSync(candidate, fsConstants.X_OK);
      if (statSync(candidate).isFile()) return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

function requireExecutable(name: 'redis-server' | 'redis-cli'): string {
  const found = findExecutable(name);
  if (found === undefined) {
    throw new Error(
      `\`${name}\` was not found on PATH, and this test needs a real Redis. ${REDIS_INSTALL_HINT}`,
    );
  }
  return found;
}

function isLoopbackHost(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  return host === 'localhost' || host === '::1' || /^127(\.\d{1,3}){3}$/.test(host);
}

// ---------------------------------------------------------------------------------------------
// Ports
// ---------------------------------------------------------------------------------------------

/** Binds 127.0.0.1:`port` (0 = any) and closes again; resolves the bound port, or `undefined` if it is taken. */
function probePort(port: number): Promise<number | undefined> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    const timer = setTimeout(() => {
      server.close();
      reject(new Error(`Timed out after ${PORT_PROBE_TIMEOUT_MS} ms binding 127.0.0.1:${port}`));
    }, PORT_PROBE_TIMEOUT_MS);
    server.unref();
    server.once('error', (error) => {
      clearTimeout(timer);
      const code = errnoCode(error);
      if (code === 'EADDRINUSE' || code === 'EACCES') resolve(undefined);
      else reject(error);
    });
    server.listen({ host: LOOPBACK_HOST, port, exclusive: true }, () => {
      const address = server.address();
      const bound = typeof address === 'object' && address !== null ? address.port : undefined;
      server.close(() => {
        clearTimeout(timer);
        resolve(bound);
      });
    });
  });
}

/**
 * Finds a TCP port that is free on 127.0.0.1: binds port 0, reads the port the kernel chose and
 * closes the socket again. Another process can take the port before it is used; the harness's own
 * start-up retries on "Address already in use".
 */
export async function findFreePort(): Promise<number> {
  const port = await probePort(0);
  if (port === undefined) throw new Error('Could not bind any free port on 127.0.0.1');
  return port;
}

/**
 * Finds a port `p` on 127.0.0.1 such that both `p` and its cluster-bus port `p + 10000` are free
 * and neither is in `exclude`.
 */
export async function findFreeClusterPort(
  exclude: ReadonlySet<number> = new Set(),
): Promise<number> {
  for (let i = 0; i < CLUSTER_PORT_PICK_ATTEMPTS; i++) {
    const port = await findFreePort();
    const bus = port + CLUSTER_BUS_PORT_OFFSET;
    if (bus > 65_535 || exclude.has(port) || exclude.has(bus)) continue;
    if ((await probePort(bus)) !== undefined) return port;
  }
  throw new Error(
    `Found no port p with both p and p+${CLUSTER_BUS_PORT_OFFSET} free on 127.0.0.1 ` +
      `in ${CLUSTER_PORT_PICK_ATTEMPTS} attempts`,
  );
}

// ---------------------------------------------------------------------------------------------
// Minimal RESP client (one command per connection), so readiness checks need no ioredis.
// ---------------------------------------------------------------------------------------------

/** An error reply (`-ERR ...`) from Redis. */
class RedisReplyError extends Error {
  override readonly name = 'RedisReplyError';
}

type SimpleReply = string | number | null;

/** Parses one RESP2 reply of type `+`, `-`, `:` or `$`; `undefined` while incomplete. */
function parseReply(buffer: Buffer): { value: SimpleReply | RedisReplyError } | undefined {
  const lineEnd = buffer.indexOf('\r\n');
  if (lineEnd < 0) return undefined;
  const type = String.fromCharCode(buffer[0]!);
  const line = buffer.toString('utf8', 1, lineEnd);
  switch (type) {
    case '+':
      return { value: line };
    case '-':
      return { value: new RedisReplyError(line) };
    case ':':
      return { value: Number(line) };
    case '$': {
      const length = Number(line);
      if (length < 0) return { value: null };
      const start = lineEnd + 2;
      if (buffer.length < start + length + 2) return undefined;
      return { value: buffer.toString('utf8', start, start + length) };
    }
    default:
      throw new Error(`Unsupported RESP reply type ${JSON.stringify(type)}`);
  }
}

/**
 * Sends one command to 127.0.0.1:`port` on a fresh connection and resolves its reply (simple,
 * integer and bulk replies only). Rejects on a Redis error reply, a socket error or a timeout.
 */
function sendCommand(
  port: number,
  args: readonly string[],
  timeoutMs = PING_TIMEOUT_MS,
  host = LOOPBACK_HOST,
): Promise<SimpleReply> {
  return new Promise((resolve, reject) => {
    let received = Buffer.alloc(0);
    let settled = false;
    const socket = createConnection({ host, port });
    const finish = (error: Error | undefined, value?: SimpleReply): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (error) reject(error);
      else resolve(value ?? null);
    };
    const timer = setTimeout(
      () => finish(new Error(`No reply to ${args[0]} from ${host}:${port} within ${timeoutMs} ms`)),
      timeoutMs,
    );
    socket.on('error', (error) => finish(error));
    socket.on('close', () =>
      finish(new Error(`Connection to ${host}:${port} closed before a reply`)),
    );
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      if (received.length > REPLY_MAX_BYTES) {
        finish(
          new Error(`Reply to ${args[0]} from ${host}:${port} exceeds ${REPLY_MAX_BYTES} bytes`),
        );
        return;
      }
      try {
        const parsed = parseReply(received);
        if (parsed === undefined) return;
        if (parsed.value instanceof RedisReplyError) finish(parsed.value);
        else finish(undefined, parsed.value);
      } catch (error) {
        finish(error instanceof Error ? error : new Error(String(error)));
      }
    });
    const payload = [`*${args.length}\r\n`];
    for (const arg of args) payload.push(`$${Buffer.byteLength(arg)}\r\n${arg}\r\n`);
    socket.write(payload.join(''));
  });
}

// ---------------------------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------------------------

/**
 * The host's real `process`. Jest hands each test file a copy of `process` whose `exit` event never
 * fires; code run with `vm.runInThisContext` sees the host realm's global one, which does.
 */
function hostProcess(): NodeJS.Process {
  try {
    const host: unknown = runInThisContext('process');
    if (
      typeof host === 'object' &&
      host !== null &&
      typeof Reflect.get(host, 'on') === 'function'
    ) {
      return host as NodeJS.Process;
    }
  } catch {
    // fall back to the sandbox's own
  }
  return process;
}

/** What the exit hook cleans up: live server PIDs and their temp dirs. */
interface Leftovers {
  readonly pids: Set<number>;
  readonly dirs: Set<string>;
}

/** Shared by every test file in a Jest worker, so there is one exit hook per process, not per file. */
const LEFTOVERS_KEY = Symbol.for('nestjs-ratelimit/test/redis-harness/leftovers');

/**
 * Every harness-spawned process still alive, and every temp dir not yet removed, in this (host)
 * process. The first call registers a `process.on('exit')` hook that SIGKILLs and removes them.
 */
function leftovers(): Leftovers {
  const host = hostProcess();
  const existing: unknown = Reflect.get(host, LEFTOVERS_KEY);
  // Duck-typed: each Jest test file has its own realm, hence its own `Set` for `instanceof`.
  if (typeof existing === 'object' && existing !== null && 'pids' in existing) {
    return existing as Leftovers;
  }
  const created: Leftovers = { pids: new Set(), dirs: new Set() };
  Reflect.set(host, LEFTOVERS_KEY, created);
  host.on('exit', () => {
    for (const pid of [...created.pids]) {
      try {
        host.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    for (const dir of [...created.dirs]) rmSync(dir, { recursive: true, force: true });
  });
  return created;
}

async function makeTempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'nestjs-ratelimit-redis-'));
  leftovers().dirs.add(dir);
  return dir;
}

async function removeTempDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
  leftovers().dirs.delete(dir);
}

/** On Linux, wraps the command in `setpriv --pdeathsig KILL` so the kernel kills it when we die. */
function withParentDeathSignal(binary: string, args: readonly string[]): [string, string[]] {
  if (process.platform === 'linux') {
    const setpriv = findExecutable('setpriv');
    if (setpriv !== undefined) return [setpriv, ['--pdeathsig', 'KILL', binary, ...args]];
  }
  return [binary, [...args]];
}

interface ExitInfo {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** A spawned `redis-server` with a bounded tail of its output. */
class RedisProcess {
  readonly pid: number;
  private exitInfo: ExitInfo | undefined;
  private readonly exitPromise: Promise<void>;
  private tail = '';

  private constructor(child: ChildProcess, pid: number) {
    this.pid = pid;
    this.exitPromise = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exitInfo = { code, signal };
        leftovers().pids.delete(pid);
        resolve();
      });
    });
    const append = (chunk: Buffer): void => {
      this.tail = (this.tail + chunk.toString('utf8')).slice(-OUTPUT_TAIL_CHARS);
    };
    child.stdout?.on('data', append);
    child.stderr?.on('data', append);
    // A server a test forgot to stop must not keep Jest alive; every wait below holds a timer.
    child.unref();
    (child.stdout as { unref?: () => void } | null)?.unref?.();
    (child.stderr as { unref?: () => void } | null)?.unref?.();
  }

  /** Spawns `redis-server args`; throws the install hint when the binary is missing. */
  static async spawn(args: readonly string[]): Promise<RedisProcess> {
    const binary = requireExecutable('redis-server');
    const [command, argv] = withParentDeathSignal(binary, args);
    const child = spawn(command, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    if (child.pid === undefined) {
      let timer: NodeJS.Timeout | undefined;
      const error = await new Promise<unknown>((resolve) => {
        child.once('error', resolve);
        timer = setTimeout(() => resolve(new Error('spawn reported no PID and no error')), 1_000);
      });
      clearTimeout(timer);
      if (errnoCode(error) === 'ENOENT') {
        throw new Error(`Could not run \`${command}\` (ENOENT). ${REDIS_INSTALL_HINT}`);
      }
      throw new Error(`Could not spawn redis-server: ${errorMessage(error)}`);
    }
    child.on('error', () => {
      // Errors after a successful spawn (e.g. kill on a dead process) surface through `exit`.
    });
    const spawned = new RedisProcess(child, child.pid);
    leftovers().pids.add(child.pid);
    return spawned;
  }

  get exited(): boolean {
    return this.exitInfo !== undefined;
  }

  output(): string {
    return this.tail;
  }

  describeExit(): string {
    if (this.exitInfo === undefined) return 'still running';
    const { code, signal } = this.exitInfo;
    return signal !== null ? `killed by ${signal}` : `exited with code ${code}`;
  }

  signal(signal: NodeJS.Signals): void {
    if (this.exited) return;
    try {
      process.kill(this.pid, signal);
    } catch (error) {
      if (errnoCode(error) !== 'ESRCH') throw error;
    }
  }

  /** Resolves `true` once the process has exited, `false` if it has not within `timeoutMs`. */
  async waitForExit(timeoutMs: number): Promise<boolean> {
    if (this.exited) return true;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    try {
      return await Promise.race([this.exitPromise.then(() => true as const), timedOut]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** SIGTERM (after SIGCONT, in case it is paused), then SIGKILL after `graceMs`; waits for exit. */
  async terminate(graceMs = STOP_GRACE_MS): Promise<void> {
    if (this.exited) return;
    this.signal('SIGCONT');
    this.signal('SIGTERM');
    if (await this.waitForExit(graceMs)) return;
    await this.hardKill('SIGKILL');
  }

  /** Sends `signal` and waits (bounded) until the process has exited; escalates to SIGKILL. */
  async hardKill(signal: NodeJS.Signals): Promise<void> {
    if (this.exited) return;
    this.signal(signal);
    if (await this.waitForExit(KILL_WAIT_MS)) return;
    if (signal !== 'SIGKILL') {
      this.signal('SIGKILL');
      if (await this.waitForExit(KILL_WAIT_MS)) return;
    }
    throw new Error(
      `redis-server pid ${this.pid} did not exit within ${KILL_WAIT_MS} ms of ${signal}` +
        `${signal !== 'SIGKILL' ? ' and SIGKILL' : ''}`,
    );
  }
}

/** Start-up failure; `addressInUse` tells the caller a fresh port may help. */
class RedisStartError extends Error {
  override readonly name = 'RedisStartError';
  constructor(
    message: string,
    readonly addressInUse: boolean,
  ) {
    super(message);
  }
}

function startFailure(what: string, proc: RedisProcess): RedisStartError {
  const output = proc.output().trim();
  return new RedisStartError(
    `${what}\n--- redis-server output (tail) ---\n${output || '(no output)'}\n---`,
    /address already in use/i.test(output),
  );
}

/** Spawns `redis-server args` and waits (bounded) until 127.0.0.1:`port` answers PONG. */
async function launch(
  args: readonly string[],
  port: number,
  timeoutMs: number,
): Promise<RedisProcess> {
  const proc = await RedisProcess.spawn(args);
  let lastProblem = '';
  try {
    await pollUntil(
      `redis-server (pid ${proc.pid}) to answer PING on 127.0.0.1:${port}`,
      timeoutMs,
      POLL_INTERVAL_MS,
      async () => {
        if (proc.exited) {
          throw startFailure(
            `redis-server on port ${port} ${proc.describeExit()} during start-up`,
            proc,
          );
        }
        try {
          const reply = await sendCommand(port, ['PING']);
          if (reply === 'PONG') return true;
          lastProblem = `unexpected reply ${JSON.stringify(reply)}`;
        } catch (error) {
          lastProblem = errorMessage(error);
        }
        return undefined;
      },
      () => lastProblem,
    );
    return proc;
  } catch (error) {
    await proc.terminate().catch(() => undefined);
    if (error instanceof RedisStartError) throw error;
    throw startFailure(errorMessage(error), proc);
  }
}

function serverArgs(port: number, dir: string, extraArgs: readonly string[]): string[] {
  return [
    '--port',
    String(port),
    '--bind',
    LOOPBACK_HOST,
    '--save',
    '',
    '--appendonly',
    'no',
    '--dir',
    dir,
    '--daemonize',
    'no',
    ...extraArgs,
  ];
}

class OwnedRedisServer implements OwnedRedisServerHandle {
  readonly host = LOOPBACK_HOST;
  readonly external = false as const;
  private stopped = false;

  private constructor(
    readonly port: number,
    readonly dir: string,
    private readonly args: readonly string[],
    private readonly startTimeoutMs: number,
    private proc: RedisProcess,
  ) {}

  get url(): string {
    return `redis://${this.host}:${this.port}`;
  }

  get pid(): number {
    return this.proc.pid;
  }

  static async start(
    options: StartRedisServerOptions & {
      readonly pickPort?: () => Promise<number>;
      readonly argsFor?: (dir: string) => readonly string[];
    } = {},
  ): Promise<OwnedRedisServer> {
    requireExecutable('redis-server');
    const startTimeoutMs = options.startTimeoutMs ?? START_TIMEOUT_MS;
    const pickPort = options.pickPort ?? findFreePort;
    const dir = await makeTempDir();
    const extraArgs = [...(options.argsFor?.(dir) ?? []), ...(options.extraArgs ?? [])];
    try {
      // Another process can grab a probed port before redis-server binds it: retry a fresh one.
      let lastError: unknown;
      for (let attempt = 1; attempt <= PORT_ATTEMPTS; attempt++) {
        const port = await pickPort();
        const args = serverArgs(port, dir, extraArgs);
        try {
          const proc = await launch(args, port, startTimeoutMs);
          return new OwnedRedisServer(port, dir, args, startTimeoutMs, proc);
        } catch (error) {
          if (!(error instanceof RedisStartError && error.addressInUse)) throw error;
          lastError = error;
        }
      }
      throw lastError;
    } catch (error) {
      await removeTempDir(dir);
      throw error;
    }
  }

  output(): string {
    return this.proc.output();
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    try {
      await this.proc.terminate();
    } finally {
      await removeTempDir(this.dir);
    }
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    this.assertNotStopped('kill');
    await this.proc.hardKill(signal);
  }

  async restart(): Promise<void> {
    this.assertNotStopped('restart');
    await this.proc.terminate();
    this.proc = await launch(this.args, this.port, this.startTimeoutMs);
  }

  async pause(): Promise<void> {
    this.assertRunning('pause');
    this.proc.signal('SIGSTOP');
  }

  async resume(): Promise<void> {
    this.assertRunning('resume');
    this.proc.signal('SIGCONT');
  }

  private assertNotStopped(action: string): void {
    if (this.stopped)
      throw new Error(`Cannot ${action} redis-server on port ${this.port}: stop() was called`);
  }

  private assertRunning(action: string): void {
    this.assertNotStopped(action);
    if (this.proc.exited) {
      throw new Error(
        `Cannot ${action} redis-server on port ${this.port}: it ${this.proc.describeExit()}`,
      );
    }
  }
}

class ExternalRedisServer implements RedisServerHandle {
  readonly external = true as const;
  readonly pid = undefined;

  constructor(
    readonly host: string,
    readonly port: number,
    readonly url: string,
    private readonly shownUrl: string,
  ) {}

  async stop(): Promise<void> {
    // Not ours to stop.
  }

  kill(): Promise<void> {
    return Promise.reject(this.notOwned('kill'));
  }

  restart(): Promise<void> {
    return Promise.reject(this.notOwned('restart'));
  }

  private notOwned(action: string): Error {
    return new Error(
      `Cannot ${action} the external Redis at REDIS_URL=${this.shownUrl}: this test needs a ` +
        'harness-started server; use startOwnedRedisServer() for tests that kill or restart Redis.',
    );
  }
}

async function externalServer(rawUrl: string): Promise<ExternalRedisServer> {
  let url: URL;
  try {
    url = new URL(rawUrl);
  } catch {
    throw new Error(
      `REDIS_URL=${JSON.stringify(rawUrl)} is not a URL (expected redis://127.0.0.1:<port>)`,
    );
  }
  if (url.password !== '') url.password = '***';
  const shown = url.toString(); // for messages: never print a password
  if (url.protocol !== 'redis:') {
    throw new Error(`REDIS_URL=${shown} must use the redis: scheme`);
  }
  if (!isLoopbackHost(url.hostname)) {
    throw new Error(`REDIS_URL=${shown} is not a loopback address; tests only ever use 127.0.0.1`);
  }
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const port = url.port === '' ? 6379 : Number(url.port);
  let lastProblem = '';
  await pollUntil(
    `the Redis at REDIS_URL=${shown} to answer`,
    START_TIMEOUT_MS,
    POLL_INTERVAL_MS,
    async () => {
      try {
        await sendCommand(port, ['PING'], PING_TIMEOUT_MS, host);
        return true;
      } catch (error) {
        // Any reply, even -NOAUTH, proves a Redis is listening.
        if (error instanceof RedisReplyError) return true;
        lastProblem = errorMessage(error);
        return undefined;
      }
    },
    () => lastProblem,
  );
  return new ExternalRedisServer(host, port, rawUrl, shown);
}

// ---------------------------------------------------------------------------------------------
// Public entry points
// ---------------------------------------------------------------------------------------------

/**
 * Starts a `redis-server` on a free 127.0.0.1 port, with no persistence and a fresh temp dir, and
 * waits (5 s by default) until it answers PING.
 *
 * If `REDIS_URL` is set (loopback only) and no `extraArgs` are given, returns a handle for that
 * external server instead: no process, `stop()` is a no-op, `kill()`/`restart()` reject. Tests
 * that kill or restart Redis must use {@link startOwnedRedisServer}. With `extraArgs` the harness
 * always spawns its own server, since an external one cannot honour them.
 *
 * @throws when `redis-server` is not on PATH (with an install hint), or it does not come up in time.
 */
export async function startRedisServer(
  options: StartRedisServerOptions = {},
): Promise<RedisServerHandle> {
  const external = process.env['REDIS_URL'];
  if (external !== undefined && external !== '' && (options.extraArgs ?? []).length === 0) {
    return externalServer(external);
  }
  return OwnedRedisServer.start(options);
}

/**
 * Like {@link startRedisServer} but always spawns its own `redis-server`, ignoring `REDIS_URL`:
 * for failure tests that kill, pause or restart the server.
 */
export async function startOwnedRedisServer(
  options: StartRedisServerOptions = {},
): Promise<OwnedRedisServerHandle> {
  return OwnedRedisServer.start(options);
}

function parseClusterInfo(text: string): Map<string, string> {
  const info = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon > 0) info.set(line.slice(0, colon), line.slice(colon + 1).trim());
  }
  return info;
}

/** Parses `CLUSTER NODES` into a slot → master lookup table. */
function slotTable(clusterNodes: string): (RedisNodeAddress | undefined)[] {
  const table: (RedisNodeAddress | undefined)[] = new Array<RedisNodeAddress | undefined>(
    CLUSTER_SLOTS,
  );
  for (const line of clusterNodes.split(/\r?\n/)) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 8 || !fields[2]!.split(',').includes('master')) continue;
    const address = /^(.*):(\d+)@/.exec(fields[1]!);
    if (address === null) continue;
    const node = { host: address[1]!, port: Number(address[2]) };
    for (const range of fields.slice(8)) {
      const match = /^(\d+)(?:-(\d+))?$/.exec(range);
      if (match === null) continue; // [slot->-node] migration markers
      const first = Number(match[1]);
      const last = match[2] === undefined ? first : Number(match[2]);
      for (let slot = first; slot <= last && slot < CLUSTER_SLOTS; slot++) table[slot] = node;
    }
  }
  return table;
}

function runRedisCli(args: readonly string[], timeoutMs: number): Promise<string> {
  const binary = requireExecutable('redis-cli');
  return new Promise((resolve, reject) => {
    const child = execFile(
      binary,
      [...args],
      { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 1_048_576 },
      (error, stdout, stderr) => {
        const output = `${stdout}${stderr}`.trim().slice(-OUTPUT_TAIL_CHARS);
        if (error) {
          const reason = error.killed
            ? `timed out after ${timeoutMs} ms`
            : error.message.split('\n')[0];
          reject(
            new Error(
              `redis-cli ${args.join(' ')} failed (${reason})\n--- output ---\n${output}\n---`,
            ),
          );
        } else {
          resolve(output);
        }
      },
    );
    child.stdin?.end();
  });
}

/**
 * Starts a 3-master Redis Cluster (no replicas) on free 127.0.0.1 ports (each with its cluster-bus
 * port `+10000` free too): spawns 3 `redis-server --cluster-enabled yes` nodes, joins them with
 * `redis-cli --cluster create`, and waits (15 s at most) until every node reports
 * `cluster_state:ok` with all 16384 slots assigned and all 3 nodes known.
 *
 * @param options.extraArgs extra `redis-server` arguments for every node, e.g.
 *   `['--cluster-require-full-coverage', 'no']` so the healthy masters keep serving their slots
 *   while another master is down
 * @throws when `redis-server` or `redis-cli` is not on PATH (with an install hint), or the cluster
 *   does not form in time (with every node's `CLUSTER INFO` and output tail).
 */
export async function startRedisCluster(
  options: { readonly extraArgs?: readonly string[] } = {},
): Promise<RedisClusterHandle> {
  requireExecutable('redis-server');
  requireExecutable('redis-cli');
  const servers: OwnedRedisServer[] = [];
  const stopAll = async (): Promise<void> => {
    const results = await Promise.allSettled(servers.map((server) => server.stop()));
    const failures = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failures.length > 0) {
      throw new Error(
        `Stopping the cluster failed: ${failures.map((f) => errorMessage(f.reason)).join('; ')}`,
      );
    }
  };
  try {
    const used = new Set<number>();
    const pickPort = async (): Promise<number> => {
      const port = await findFreeClusterPort(used);
      used.add(port).add(port + CLUSTER_BUS_PORT_OFFSET);
      return port;
    };
    // Sequential: ports are picked against the ones already taken, and start-up is fast.
    for (let i = 0; i < 3; i++) {
      servers.push(
        await OwnedRedisServer.start({
          pickPort,
          argsFor: (dir) => [
            '--cluster-enabled',
            'yes',
            '--cluster-config-file',
            join(dir, 'nodes.conf'),
            '--cluster-node-timeout',
            String(CLUSTER_NODE_TIMEOUT_MS),
            ...(options.extraArgs ?? []),
          ],
        }),
      );
    }

    await runRedisCli(
      [
        '--cluster',
        'create',
        ...servers.map((server) => `${LOOPBACK_HOST}:${server.port}`),
        '--cluster-replicas',
        '0',
        '--cluster-yes',
      ],
      CLUSTER_CREATE_TIMEOUT_MS,
    );

    const lastInfo = new Map<number, string>();
    await pollUntil(
      'every cluster node to report cluster_state:ok with 16384 slots assigned',
      CLUSTER_READY_TIMEOUT_MS,
      CLUSTER_POLL_INTERVAL_MS,
      async () => {
        const ready = await Promise.all(
          servers.map(async (server) => {
            try {
              const reply = await sendCommand(server.port, ['CLUSTER', 'INFO']);
              const info = parseClusterInfo(String(reply));
              lastInfo.set(
                server.port,
                ['cluster_state', 'cluster_slots_assigned', 'cluster_known_nodes']
                  .map((key) => `${key}:${info.get(key)}`)
                  .join(' '),
              );
              return (
                info.get('cluster_state') === 'ok' &&
                info.get('cluster_slots_assigned') === String(CLUSTER_SLOTS) &&
                info.get('cluster_known_nodes') === String(servers.length)
              );
            } catch (error) {
              lastInfo.set(server.port, errorMessage(error));
              return false;
            }
          }),
        );
        return ready.every(Boolean) ? true : undefined;
      },
      () =>
        servers
          .map(
            (server) => `\n  127.0.0.1:${server.port} ${lastInfo.get(server.port) ?? '(no reply)'}`,
          )
          .join('') +
        servers
          .map((server) => `\n--- node ${server.port} output (tail) ---\n${server.output().trim()}`)
          .join(''),
    );

    const table = slotTable(
      String(await sendCommand(servers[0]!.port, ['CLUSTER', 'NODES'], 2_000)),
    );
    const missing = table.findIndex((node) => node === undefined);
    if (missing >= 0 || table.length !== CLUSTER_SLOTS) {
      throw new Error(
        `CLUSTER NODES on port ${servers[0]!.port} leaves slot ${missing} unassigned`,
      );
    }
    const nodes = servers.map((server) => ({ host: server.host, port: server.port }));
    return {
      nodes,
      servers,
      nodeFor(slot: number): RedisNodeAddress {
        if (!Number.isInteger(slot) || slot < 0 || slot >= CLUSTER_SLOTS) {
          throw new RangeError(`slot must be an integer in 0..${CLUSTER_SLOTS - 1}, got ${slot}`);
        }
        return table[slot]!;
      },
      stop: stopAll,
    };
  } catch (error) {
    await stopAll().catch(() => undefined);
    throw error;
  }
}

// ---------------------------------------------------------------------------------------------
// Key slots
// ---------------------------------------------------------------------------------------------

/** CRC16/XMODEM, the checksum Redis Cluster hashes keys with. */
function crc16(bytes: Uint8Array): number {
  let crc = 0;
  for (const byte of bytes) {
    crc ^= byte << 8;
    for (let bit = 0; bit < 8; bit++) {
      crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    }
  }
  return crc;
}

/**
 * The Redis Cluster hash slot of `key` (what `CLUSTER KEYSLOT` answers), honouring hash tags: if
 * the key holds `{...}` with at least one character inside, only that part is hashed.
 */
export function keySlot(key: string): number {
  const open = key.indexOf('{');
  if (open >= 0) {
    const close = key.indexOf('}', open + 1);
    if (close > open + 1) key = key.slice(open + 1, close);
  }
  return crc16(Buffer.from(key, 'utf8')) % CLUSTER_SLOTS;
}
