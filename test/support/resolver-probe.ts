/**
 * A real Nest app (Express) that asks an auth resolver who is calling, in both of its forms:
 * `GET /class` answers with what the resolver class says (created by Nest's DI) and
 * `GET /function` with what its function form says. An interceptor answers in place of the
 * handlers, so an EmptyInformation the resolver throws becomes the usual 401.
 */
import {
  Controller,
  Get,
  Inject,
  Injectable,
  UseInterceptors,
  type CallHandler,
  type ExecutionContext,
  type NestInterceptor,
  type Provider,
  type Type,
} from '@nestjs/common';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { Test } from '@nestjs/testing';
import { of, type Observable } from 'rxjs';
import type request from 'supertest';
import type { AuthResolver } from '../../lib/auth/auth-resolver.js';
import type { AuthFunction, IdentityLike, RateLimitRequest } from '../../lib/auth/identity.js';

/** What the probe answers with, from the identity a form gave and the request. */
export type ProbeAnswer = (identity: IdentityLike, request: RateLimitRequest) => unknown;

const PROBE_RESOLVER = Symbol('the resolver class under test');
const PROBE_FUNCTION = Symbol('the auth function under test');
const PROBE_ANSWER = Symbol('what the probe answers');

/** Replaces the handler's answer with what the resolver says about the caller. */
@Injectable()
class IdentityInterceptor implements NestInterceptor {
  constructor(
    @Inject(PROBE_RESOLVER) private readonly resolver: AuthResolver,
    @Inject(PROBE_FUNCTION) private readonly authenticate: AuthFunction,
    @Inject(PROBE_ANSWER) private readonly answer: ProbeAnswer,
  ) {}

  async intercept(context: ExecutionContext, _next: CallHandler): Promise<Observable<unknown>> {
    const req = context.switchToHttp().getRequest<RateLimitRequest>();
    const identity =
      context.getHandler().name === 'viaClass'
        ? await this.resolver.resolve(context)
        : await this.authenticate(req, context);
    return of(this.answer(identity, req));
  }
}

@Controller()
@UseInterceptors(IdentityInterceptor)
class WhoAmIController {
  @Get('class')
  viaClass(): string {
    return 'not reached: the interceptor answers';
  }

  @Get('function')
  viaFunction(): string {
    return 'not reached: the interceptor answers';
  }
}

export interface ResolverProbeOptions {
  /** The class form. It is registered bare: Nest must create it from its own providers. */
  resolver: Type<AuthResolver>;
  /** The function form. */
  authenticate: AuthFunction;
  /** More providers, such as the options token the class reads. */
  providers?: Provider[];
  /** More controllers, registered before the who-am-I one (a login route, say). */
  controllers?: Type[];
  /** What both routes answer with; the identity itself unless given. */
  answer?: ProbeAnswer;
  /** Runs on the app before init (middleware, trust proxy...). */
  configure?: (app: NestExpressApplication) => void;
}

/** Boots the probe app: `/class` and `/function` answer with what each form says. */
export async function createResolverProbe({
  resolver,
  authenticate,
  providers = [],
  controllers = [],
  answer = (identity) => identity,
  configure,
}: ResolverProbeOptions): Promise<NestExpressApplication> {
  const moduleRef = await Test.createTestingModule({
    controllers: [...controllers, WhoAmIController],
    providers: [
      resolver,
      { provide: PROBE_RESOLVER, useExisting: resolver },
      { provide: PROBE_FUNCTION, useValue: authenticate },
      { provide: PROBE_ANSWER, useValue: answer },
      IdentityInterceptor,
      ...providers,
    ],
  }).compile();
  const app = moduleRef.createNestApplication<NestExpressApplication>({ logger: false });
  configure?.(app);
  await app.init();
  return app;
}

/**
 * Asks `/class` and then `/function` with the same headers; both must answer `expectedStatus`
 * with the same body. Returns that body.
 */
export async function askBothForms<Body = unknown>(
  client: ReturnType<typeof request>,
  expectedStatus: number,
  headers: Record<string, string> = {},
): Promise<Body> {
  const viaClass = await client.get('/class').set(headers).expect(expectedStatus);
  const viaFunction = await client.get('/function').set(headers).expect(expectedStatus);
  expect(viaFunction.body).toEqual(viaClass.body);
  return viaClass.body as Body;
}
