/**
 * Response-aware counting, decision events and `@RateLimitState()` outside HTTP: GraphQL
 * resolvers (Apollo on Express, Mercurius on Fastify) and microservice handlers over real TCP,
 * where the handler's outcome (seen by `RateLimitInterceptor`) decides what counts.
 */
import { Controller, UnauthorizedException, type ExecutionContext } from '@nestjs/common';
import { Args, Mutation, Query, Resolver } from '@nestjs/graphql';
import { MessagePattern, Payload, RpcException } from '@nestjs/microservices';
import {
  MemoryBackend,
  RateLimit,
  RateLimitModule,
  RateLimitState,
  type Identity,
  type RateLimitEvent,
} from 'nestjs-ratelimit';
import { createGraphqlApp, GRAPHQL_DRIVERS, type GraphqlTestApp } from './support/graphql-app.js';
import { startMicroservice, type MicroserviceApp } from './support/microservice-app.js';
import { headerAuth, TestClock } from './support/nest-app.js';

@Resolver()
class LoginResolver {
  @RateLimit({ minute: 2, count: 'failures' })
  @Mutation(() => String)
  login(@Args('password') password: string): string {
    if (password !== 'right') throw new UnauthorizedException('wrong password');
    return 'welcome';
  }

  @Query(() => String, { nullable: true })
  version(): string {
    return '1';
  }
}

describe.each(GRAPHQL_DRIVERS)('GraphQL on $name', (driver) => {
  let app: GraphqlTestApp | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  it("counts only the failed calls of a count: 'failures' resolver", async () => {
    const events: RateLimitEvent[] = [];
    app = await createGraphqlApp(driver, {
      resolvers: [LoginResolver],
      rateLimit: { authenticate: headerAuth, onDecision: (event) => events.push(event) },
    });
    const login = (password: string) =>
      app!.query(`mutation { login(password: "${password}") }`, { user: 'u' });
    for (let i = 0; i < 5; i++) {
      expect((await login('right')).body.data).toEqual({ login: 'welcome' });
    }
    for (let i = 0; i < 2; i++) {
      const failed = await login('wrong');
      expect(failed.body.errors?.[0]?.message).toBe('wrong password');
    }
    const rejected = await login('right');
    expect(rejected.body.errors?.[0]?.extensions).toMatchObject({
      code: 'TOO_MANY_REQUESTS',
      retryAfter: 60,
    });
    expect(events.map((event) => [event.outcome, event.contextType])).toEqual([
      ...Array(7).fill(['allowed', 'graphql']),
      ['rejected', 'graphql'],
    ]);
    app.clock.advance(60_000);
    expect((await login('right')).body.data).toEqual({ login: 'welcome' });
  });
});

/** Messages of the RPC tests: who calls, and what they send. */
interface LoginMessage {
  user?: string;
  password?: string;
}

@Controller()
class RpcLoginController {
  @RateLimit({ minute: 2, count: 'failures' })
  @MessagePattern('login')
  login(@Payload() message: LoginMessage): string {
    if (message.password !== 'right') throw new RpcException('wrong password');
    return 'welcome';
  }

  @RateLimit({ minute: 3 })
  @MessagePattern('quota')
  quota(@RateLimitState() state?: RateLimitState): number | undefined {
    return state?.units[0]?.remaining;
  }
}

function payloadUser(payload: unknown, _context: ExecutionContext): Identity {
  return { user: String((payload as LoginMessage).user) };
}

describe('microservices', () => {
  let service: MicroserviceApp | undefined;
  afterEach(async () => {
    await service?.close();
    service = undefined;
  });

  async function start(
    clock: TestClock,
    onDecision?: (event: RateLimitEvent) => void,
  ): Promise<MicroserviceApp> {
    service = await startMicroservice({
      imports: [
        RateLimitModule.forRoot({
          authenticate: payloadUser,
          backend: new MemoryBackend({ clock: clock.read, sweepIntervalMs: 0 }),
          ...(onDecision === undefined ? {} : { onDecision }),
        }),
      ],
      controllers: [RpcLoginController],
    });
    return service;
  }

  it('counts a handler that throws as a failure and gives back one that answers', async () => {
    const { client } = await start(new TestClock());
    for (let i = 0; i < 4; i++) {
      expect(await client.send('login', { user: 'u', password: 'right' })).toBe('welcome');
    }
    for (let i = 0; i < 2; i++) {
      expect(await client.errorOf('login', { user: 'u', password: 'wrong' })).toMatchObject({
        message: 'wrong password',
      });
    }
    expect(await client.errorOf('login', { user: 'u', password: 'right' })).toMatchObject({
      statusCode: 429,
      retryAfter: 60,
    });
  });

  it('hands a message handler its own decision, and reports it', async () => {
    const events: RateLimitEvent[] = [];
    const { client } = await start(new TestClock(), (event) => events.push(event));
    expect(await client.send('quota', { user: 'u' })).toBe(2);
    expect(await client.send('quota', { user: 'u' })).toBe(1);
    expect(await client.send('quota', { user: 'v' })).toBe(2);
    expect(events.map((event) => [event.outcome, event.contextType, event.counter])).toEqual(
      ['u', 'u', 'v'].map((user) => [
        'allowed',
        'rpc',
        { user, scope: 'handler:RpcLoginController.quota', method: '*' },
      ]),
    );
  });
});
