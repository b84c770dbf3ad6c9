import type { INestApplication } from '@nestjs/common';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { IoAdapter } from '@nestjs/platform-socket.io';
import { WsAdapter } from '@nestjs/platform-ws';
import { io, type Socket } from 'socket.io-client';
import WebSocket from 'ws';
import { trackWsClients } from 'nestjs-ratelimit';

/**
 * The major version of the `@nestjs/websockets` the tests run on (11 or 12), read from its
 * `package.json` next to its entry point (Nest 12 does not export the file itself).
 */
export const NEST_MAJOR: number = (() => {
  const entry = createRequire(import.meta.url).resolve('@nestjs/websockets');
  const { version } = JSON.parse(readFileSync(join(dirname(entry), 'package.json'), 'utf8')) as {
    version: string;
  };
  return Number(version.split('.')[0]);
})();

/** One message a client received: the event name and its data. */
export interface WsReply {
  readonly event: string;
  readonly data: unknown;
}

/** How a test connects: handshake headers, and socket.io's `auth.token`. */
export interface ConnectOptions {
  readonly headers?: Record<string, string>;
  /** socket.io only: sent as the handshake's `auth: { token }`. */
  readonly token?: string;
  /** socket.io only: the transports to try (default: WebSocket alone). */
  readonly transports?: ('polling' | 'websocket')[];
}

/** A real client of a gateway, as a test drives it. */
export interface TestWsClient {
  /**
   * Sends one message and waits for the one thing it gets back: the handler's reply or the
   * `exception` event Nest sends for a rejection. `data` defaults to `null` (socket.io sends
   * `undefined` as `null`).
   */
  request(event: string, data?: unknown): Promise<WsReply>;
  /** Sends one message without waiting for anything. */
  send(event: string, data?: unknown): void;
  /** True while the connection is open. */
  readonly isOpen: boolean;
  close(): Promise<void>;
}

/** One WebSocket platform: the adapter the application installs and the client that talks to it. */
export interface WsPlatform {
  readonly name: string;
  /** Installs the platform's adapter on `app`, as the README tells users to. */
  install(app: INestApplication): void;
  /** Connects to the gateway of the application listening at `url` (`http://127.0.0.1:port`). */
  connect(url: string, options?: ConnectOptions): Promise<TestWsClient>;
}

/** How long one reply or one connection may take before the test fails, not hangs. */
const WAIT_MS = 5_000;

/** Replies in arrival order, and the requests waiting for them. */
class Inbox {
  private readonly replies: WsReply[] = [];
  private readonly waiting: ((reply: WsReply) => void)[] = [];

  push(reply: WsReply): void {
    const waiter = this.waiting.shift();
    if (waiter) waiter(reply);
    else this.replies.push(reply);
  }

  next(what: string): Promise<WsReply> {
    const ready = this.replies.shift();
    if (ready) return Promise.resolve(ready);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.splice(this.waiting.indexOf(waiter), 1);
        reject(new Error(`no reply to ${what} within ${WAIT_MS} ms`));
      }, WAIT_MS);
      const waiter = (reply: WsReply): void => {
        clearTimeout(timer);
        resolve(reply);
      };
      this.waiting.push(waiter);
    });
  }
}

function withTimeout<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took over ${WAIT_MS} ms`)), WAIT_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** `@nestjs/platform-ws`, wrapped with `trackWsClients`; the client is the `ws` package. */
export const wsPlatform: WsPlatform = {
  name: '@nestjs/platform-ws',
  install: (app) => {
    app.useWebSocketAdapter(trackWsClients(new WsAdapter(app)));
  },
  connect: (url, options = {}) => connectWs(url, options),
};

/** `@nestjs/platform-ws` as installed without `trackWsClients`. */
export const untrackedWsPlatform: WsPlatform = {
  name: '@nestjs/platform-ws without trackWsClients',
  install: (app) => {
    app.useWebSocketAdapter(new WsAdapter(app));
  },
  connect: (url, options = {}) => connectWs(url, options),
};

/** `@nestjs/platform-socket.io`, as installed by hand (no wrapper); the client is socket.io's. */
export const socketIoPlatform: WsPlatform = {
  name: '@nestjs/platform-socket.io',
  install: (app) => {
    app.useWebSocketAdapter(new IoAdapter(app));
  },
  connect: (url, options = {}) => connectSocketIo(url, options),
};

async function connectWs(url: string, options: ConnectOptions): Promise<TestWsClient> {
  const socket = new WebSocket(`${url.replace(/^http/, 'ws')}/`, { headers: options.headers });
  const inbox = new Inbox();
  // Nest's WsAdapter answers with JSON text frames: `{ event, data }` for replies and exceptions.
  socket.on('message', (raw) => inbox.push(JSON.parse(String(raw)) as WsReply));
  await withTimeout(
    new Promise<void>((resolve, reject) => {
      socket.once('open', () => resolve());
      socket.once('error', reject);
    }),
    'connecting a ws client',
  );
  return {
    request: (event, data = null) => {
      socket.send(JSON.stringify({ event, data }));
      return inbox.next(event);
    },
    send: (event, data = null) => {
      socket.send(JSON.stringify({ event, data }));
    },
    get isOpen() {
      return socket.readyState === WebSocket.OPEN;
    },
    close: async () => {
      if (socket.readyState === WebSocket.CLOSED) return;
      const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
      socket.close();
      await withTimeout(closed, 'closing a ws client');
    },
  };
}

async function connectSocketIo(url: string, options: ConnectOptions): Promise<TestWsClient> {
  const socket: Socket = io(url, {
    transports: options.transports ?? ['websocket'],
    extraHeaders: options.headers,
    auth: options.token === undefined ? undefined : { token: options.token },
    reconnection: false,
    forceNew: true,
  });
  const inbox = new Inbox();
  socket.onAny((event: string, data: unknown) => inbox.push({ event, data }));
  await withTimeout(
    new Promise<void>((resolve, reject) => {
      socket.once('connect', () => resolve());
      socket.once('connect_error', reject);
    }),
    'connecting a socket.io client',
  );
  return {
    request: (event, data = null) => {
      socket.emit(event, data);
      return inbox.next(event);
    },
    send: (event, data = null) => {
      socket.emit(event, data);
    },
    get isOpen() {
      return socket.connected;
    },
    close: async () => {
      socket.disconnect();
    },
  };
}
