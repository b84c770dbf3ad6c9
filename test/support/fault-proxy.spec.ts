import { createConnection, type Socket } from 'node:net';
import { MAX_CONNECTIONS, startFaultProxy, type FaultProxy } from './fault-proxy.js';
import { startOwnedRedisServer, type OwnedRedisServerHandle } from './redis-harness.js';

/** A raw connection to the proxy, with what it received and whether it closed. */
interface Probe {
  readonly socket: Socket;
  received(): string;
  closed(): boolean;
}

function connect(proxy: FaultProxy): Promise<Probe> {
  return new Promise((resolve, reject) => {
    let data = '';
    let closed = false;
    const socket = createConnection({ host: proxy.host, port: proxy.port });
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (data += chunk));
    socket.on('close', () => (closed = true));
    socket.on('error', () => undefined); // a reset shows as 'close'
    socket.once('connect', () => resolve({ socket, received: () => data, closed: () => closed }));
    socket.once('error', reject);
  });
}

/** Waits, bounded by count and time, until `predicate` holds. */
async function waitFor(what: string, predicate: () => boolean, timeoutMs = 2_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let i = 0; i < timeoutMs / 10 && Date.now() < deadline; i++) {
    if (predicate()) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('fault proxy', () => {
  let server: OwnedRedisServerHandle;
  let proxy: FaultProxy;
  const probes: Probe[] = [];

  async function probe(): Promise<Probe> {
    const p = await connect(proxy);
    probes.push(p);
    return p;
  }

  beforeAll(async () => {
    server = await startOwnedRedisServer();
  });
  afterAll(() => server.stop());
  beforeEach(async () => {
    proxy = await startFaultProxy(server);
  });
  afterEach(async () => {
    for (const p of probes.splice(0)) p.socket.destroy();
    await proxy.stop();
  });

  it('refuses a target that is not on loopback', async () => {
    await expect(startFaultProxy({ host: '10.0.0.1', port: 6379 })).rejects.toThrow(/127\.0\.0\.1/);
  });

  it('forwards, then drops everything while keeping connections open, then forwards again', async () => {
    const before = await probe();
    before.socket.write('PING\r\n');
    await waitFor('PONG', () => before.received() === '+PONG\r\n');

    proxy.blackhole();
    const during = await probe(); // accepted, never reaches Redis
    before.socket.write('PING\r\n');
    during.socket.write('PING\r\n');
    await sleep(200);
    expect([before.received(), during.received()]).toEqual(['+PONG\r\n', '']);
    expect([before.closed(), during.closed(), proxy.connections()]).toEqual([false, false, 2]);

    // Both lost bytes, so both are reset; a new connection is forwarded.
    proxy.forward();
    await waitFor('the damaged connections to be reset', () => before.closed() && during.closed());
    const after = await probe();
    after.socket.write('PING\r\n');
    await waitFor('PONG after the blackhole', () => after.received() === '+PONG\r\n');
  });

  it('keeps an idle connection through a blackhole', async () => {
    const idle = await probe();
    proxy.blackhole();
    await sleep(50);
    proxy.forward();
    idle.socket.write('PING\r\n');
    await waitFor('PONG on the same connection', () => idle.received() === '+PONG\r\n');
    expect(idle.closed()).toBe(false);
  });

  it(`holds at most ${MAX_CONNECTIONS} connections and closes every one on stop()`, async () => {
    const held = await Promise.all(Array.from({ length: MAX_CONNECTIONS + 1 }, () => probe()));
    await waitFor('the extra connection to be reset', () => held.some((p) => p.closed()));
    expect(proxy.connections()).toBe(MAX_CONNECTIONS);
    await proxy.stop();
    await waitFor('every connection to close', () => held.every((p) => p.closed()));
    expect(proxy.connections()).toBe(0);
  });
});
