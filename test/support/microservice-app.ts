/**
 * Real `@nestjs/microservices` TCP applications on 127.0.0.1 and a real TCP client, for the
 * microservice e2e tests: a microservice-only application (`NestFactory.createMicroservice`, no
 * HTTP adapter at all) and a hybrid one (HTTP plus `connectMicroservice`).
 */
import {
  Module,
  type INestApplication,
  type INestMicroservice,
  type ModuleMetadata,
} from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import {
  ClientProxyFactory,
  Transport,
  type ClientProxy,
  type Deserializer,
} from '@nestjs/microservices';
import type { AddressInfo, Server } from 'node:net';
import { lastValueFrom } from 'rxjs';
import request from 'supertest';

const LOOPBACK = '127.0.0.1';

/**
 * Keeps every packet the server sends to the client, through the client's documented
 * `deserializer` option, so a test can tell that nothing was replied to an event.
 */
class RecordingDeserializer implements Deserializer {
  readonly packets: unknown[] = [];

  // A Nest server's TCP packets are already responses (`{ id, response | err, isDisposed }`),
  // which is all Nest's own IncomingResponseDeserializer passes on as they are. (That class is
  // not exported from the package root on Nest 11, so it is not extended here.)
  deserialize(value: unknown): unknown {
    this.packets.push(value);
    return value;
  }
}

/** A TCP client of one listening microservice, with the calls the tests make. */
export class RpcClient {
  private constructor(
    private readonly proxy: ClientProxy,
    private readonly recorder: RecordingDeserializer,
  ) {}

  /** A connected client of the TCP microservice on `port`. */
  static async connect(port: number): Promise<RpcClient> {
    const recorder = new RecordingDeserializer();
    const proxy = ClientProxyFactory.create({
      transport: Transport.TCP,
      options: { host: LOOPBACK, port, deserializer: recorder },
    });
    await proxy.connect();
    return new RpcClient(proxy, recorder);
  }

  /** Every packet the server has sent on this client's connection, in order. */
  get received(): readonly unknown[] {
    return this.recorder.packets;
  }

  /** Sends a message (`@MessagePattern`) and resolves with the reply; rejects with the error. */
  send<T = unknown>(pattern: string, data: unknown): Promise<T> {
    return lastValueFrom(this.proxy.send<T>(pattern, data));
  }

  /**
   * What a message's error is: the object the server's exception became, or `undefined` when
   * the message was answered.
   */
  async errorOf(pattern: string, data: unknown): Promise<unknown> {
    try {
      await this.send(pattern, data);
      return undefined;
    } catch (error) {
      return error;
    }
  }

  /** Emits an event (`@EventPattern`); resolves once it is written to the socket. */
  async emit(pattern: string, data: unknown): Promise<void> {
    await lastValueFrom(this.proxy.emit(pattern, data), { defaultValue: undefined });
  }

  close(): Promise<void> {
    return this.proxy.close();
  }
}

/** The port a listening TCP microservice is bound to, through its documented `unwrap()`. */
function boundPort(microservice: INestMicroservice): number {
  return (microservice.unwrap<Server>().address() as AddressInfo).port;
}

/** A module with `metadata`, for a test's own controllers and providers. */
function moduleOf(metadata: ModuleMetadata): new () => object {
  @Module(metadata)
  class RpcTestModule {}
  return RpcTestModule;
}

/** A listening microservice-only application and a client connected to it. */
export interface MicroserviceApp {
  app: INestMicroservice;
  client: RpcClient;
  close(): Promise<void>;
}

/**
 * Starts a microservice-only application (`NestFactory.createMicroservice`: no HTTP adapter,
 * `HttpAdapterHost` holds `null`) on a free loopback TCP port, and connects a client.
 */
export async function startMicroservice(metadata: ModuleMetadata): Promise<MicroserviceApp> {
  const app = await NestFactory.createMicroservice(moduleOf(metadata), {
    transport: Transport.TCP,
    options: { host: LOOPBACK, port: 0 },
    logger: false,
    // A failing start-up rejects here instead of ending the test process.
    abortOnError: false,
  });
  await app.listen();
  const client = await connectOrClose(app, app);
  return {
    app,
    client,
    close: async () => {
      await client.close();
      await app.close();
    },
  };
}

/** A client of `microservice`'s port; `app` is closed if it cannot connect. */
async function connectOrClose(
  app: { close(): Promise<void> },
  microservice: Parameters<typeof boundPort>[0],
): Promise<RpcClient> {
  try {
    return await RpcClient.connect(boundPort(microservice));
  } catch (error) {
    await app.close();
    throw error;
  }
}

/** A listening hybrid application (HTTP on Express plus a TCP microservice) and its clients. */
export interface HybridApp {
  app: INestApplication;
  client: RpcClient;
  http: ReturnType<typeof request>;
  close(): Promise<void>;
}

/**
 * Starts an HTTP application on Express with a TCP microservice connected to it, both on
 * loopback. `inheritAppConfig: true` is what makes the application's global enhancers (the
 * module's guard and filter among them) apply to the microservice's handlers too.
 */
export async function startHybrid(
  metadata: ModuleMetadata,
  { inheritAppConfig = true }: { inheritAppConfig?: boolean } = {},
): Promise<HybridApp> {
  const app = await NestFactory.create(moduleOf(metadata), { logger: false, abortOnError: false });
  const microservice = app.connectMicroservice(
    { transport: Transport.TCP, options: { host: LOOPBACK, port: 0 } },
    { inheritAppConfig },
  );
  await app.startAllMicroservices();
  await app.listen(0, LOOPBACK);
  const client = await connectOrClose(app, microservice);
  return {
    app,
    client,
    http: request(app.getHttpServer()),
    close: async () => {
      await client.close();
      await app.close();
    },
  };
}
