import { Inject, Injectable, Optional, type ExecutionContext } from '@nestjs/common';
import { optionFailure, rejectUnknownKeys, type FailOption } from '../config-validation.js';
import { isAuthCall } from './auth-call.js';
import { AuthResolver } from './auth-resolver.js';
import { identityFromFields } from './identity-fields.js';
import { callerFor } from './caller.js';
import { EmptyInformation } from './empty-information.js';
import type { AuthFunction, Identity } from './identity.js';

/** Options of {@link SessionAuthResolver} and {@link fromSession}. */
export interface SessionAuthOptions {
  /**
   * The session field holding the user id: a non-empty string, or a number (counted as its
   * string form).
   * @default 'user'
   */
  userKey?: string;
  /**
   * The session field holding the caller's group. Absent means `'default'`; when present it must
   * be a non-empty string, anything else is rejected (a group that matches no rule would silently
   * make the caller unlimited).
   * @default 'group'
   */
  groupKey?: string;
}

/**
 * DI token for {@link SessionAuthOptions}: provide it to configure a `SessionAuthResolver` that
 * Nest creates. Without a provider, the resolver uses the defaults.
 * @example
 * providers: [{ provide: SESSION_AUTH_OPTIONS, useValue: { userKey: 'userId' } }]
 */
export const SESSION_AUTH_OPTIONS = 'nestjs-ratelimit:SESSION_AUTH_OPTIONS';

const OPTION_NAMES: ReadonlySet<string> = new Set(['userKey', 'groupKey']);
const OPTION_HINTS: Readonly<Record<string, string>> = {
  user_key: 'userKey',
  group_key: 'groupKey',
  userField: 'userKey',
  groupField: 'groupKey',
};

/**
 * Identifies the caller from the request's session: `session.user` is the user and
 * `session.group` the group (`'default'` when unset). The session is express-session's on
 * Express, `@fastify/secure-session`'s or `@fastify/session`'s on Fastify (read through their
 * documented `session.get(key)`). A session without a user (an anonymous visitor) throws
 * {@link EmptyInformation}; combine with the IP resolver to limit those by address:
 * `authenticate: [SessionAuthResolver, IpAuthResolver]`.
 *
 * The session middleware or plugin must run before the rate-limit guard. Guards run after all
 * middleware and Fastify hooks, so registering it in `main.ts` is enough; if `request.session` is
 * missing the resolver throws a plain `Error` saying so (a set-up mistake, reported as a 500, not
 * as a 401).
 *
 * @example
 * // main.ts, Express
 * app.use(session({ secret: process.env.SESSION_SECRET, resave: false, saveUninitialized: false }));
 * // main.ts, Fastify: @fastify/secure-session (a signed and encrypted cookie)...
 * await app.register(secureSession, { key: Buffer.from(process.env.SESSION_KEY, 'hex') });
 * // ...or @fastify/session (a server-side store), which needs @fastify/cookie first
 * await app.register(fastifyCookie);
 * await app.register(fastifySession, { secret: process.env.SESSION_SECRET });
 * // app.module.ts
 * RateLimitModule.forRoot({ authenticate: SessionAuthResolver, config })
 */
@Injectable()
export class SessionAuthResolver extends AuthResolver {
  private readonly userKey: string;
  private readonly groupKey: string;

  /**
   * @param options which session fields to read; Nest injects {@link SESSION_AUTH_OPTIONS} when it
   *   is provided
   * @throws RateLimitConfigError when an option is invalid
   */
  constructor(@Optional() @Inject(SESSION_AUTH_OPTIONS) options: SessionAuthOptions = {}) {
    super();
    // `null` is what a DI provider with `useValue: null` gives; treat it like "no options".
    const input: unknown = options ?? {};
    if (input === null || typeof input !== 'object' || Array.isArray(input)) {
      fail('options', `must be an object such as { userKey: 'userId' }, got ${typeof input}.`);
    }
    rejectUnknownKeys(input, OPTION_NAMES, OPTION_HINTS, 'a SessionAuthResolver option', fail);
    const { userKey = 'user', groupKey = 'group' } = input as SessionAuthOptions;
    for (const [name, value] of [
      ['userKey', userKey],
      ['groupKey', groupKey],
    ] as const) {
      if (typeof value !== 'string' || value.length === 0) {
        fail(name, `must be the non-empty name of a session field, got ${JSON.stringify(value)}.`);
      }
    }
    this.userKey = userKey;
    this.groupKey = groupKey;
  }

  /** Identifies the caller of the current call from its HTTP request's session. */
  resolve(context: ExecutionContext): Identity {
    const caller = callerFor(context, 'SessionAuthResolver');
    // No session middleware runs for a gateway message: that caller is not identified here (the
    // next resolver of a chain may be able to), which is no set-up mistake.
    if (caller.session === undefined && context.getType() === 'ws') {
      throw new EmptyInformation('A WebSocket message has no HTTP session');
    }
    return this.identify(caller);
  }

  /**
   * Identifies the caller of `request` (what {@link fromSession} calls).
   * @throws Error when `request.session` is missing (no session middleware or plugin is
   *   registered, or express-session's store is unavailable)
   * @throws EmptyInformation when the session has no usable user, or an invalid group
   */
  identify(request: { readonly session?: unknown }): Identity {
    const session = request.session;
    if (session === undefined || session === null || typeof session !== 'object') {
      throw new Error(
        'SessionAuthResolver: request.session is missing. Register a session middleware or ' +
          'plugin before the rate-limit guard runs, in main.ts: on Express, express-session, ' +
          'e.g. app.use(session({ secret, resave: false, saveUninitialized: false })); on ' +
          'Fastify, @fastify/secure-session, e.g. await app.register(secureSession, { key }), ' +
          'or @fastify/session after @fastify/cookie, e.g. await app.register(fastifyCookie) ' +
          'then await app.register(fastifySession, { secret }). (express-session also leaves ' +
          'it unset while its store is disconnected.)',
      );
    }
    return identityFromFields(
      sessionFields(session, this.userKey, this.groupKey),
      this.userKey,
      this.groupKey,
      {
        noUser: 'The session has no user',
        badUser: `The session's "${this.userKey}" is not a string or number`,
        badGroup: `The session's "${this.groupKey}" is not a non-empty string`,
      },
    );
  }
}

/**
 * The two fields of a session: express-session and @fastify/session keep them as properties,
 * @fastify/secure-session (and @fastify/session too) behind a documented `get(key)`.
 */
function sessionFields(
  session: object,
  userKey: string,
  groupKey: string,
): Record<string, unknown> {
  const { get } = session as { get?: unknown };
  if (typeof get !== 'function') return session as Record<string, unknown>;
  const read = (key: string): unknown => {
    const value: unknown = get.call(session, key);
    return value === undefined ? (session as Record<string, unknown>)[key] : value;
  };
  return { [userKey]: read(userKey), [groupKey]: read(groupKey) };
}

/** The request `fromSession` reads, when it is called as an auth function. */
export interface SessionRequest {
  /** Present on every HTTP request; how `fromSession` tells a request from its options. */
  readonly headers: object;
  /** The session the session middleware attached. */
  readonly session?: unknown;
}

/** The resolver `fromSession` uses when it is passed as it is, created on first use. */
let defaultResolver: SessionAuthResolver | undefined;

/**
 * The session resolver used as an auth function itself, as asgi-ratelimit's users write
 * `from_session`: `authenticate: fromSession`, `authenticate: [fromSession, clientIp]`, or called
 * in your own function, `fromSession(request, context)`. It reads `session.user` and
 * `session.group`; for other fields, call `fromSession(options)` once.
 *
 * @example
 * RateLimitModule.forRoot({ authenticate: [fromSession, clientIp], config })
 * @throws EmptyInformation when the session has no usable user
 */
export function fromSession(request: SessionRequest, context?: ExecutionContext): Identity;
/**
 * Creates the session resolver as an auth function, `(request) => ({ user: session.user, group })`.
 * Options are validated once, here.
 *
 * @example
 * RateLimitModule.forRoot({ authenticate: [fromSession({ userKey: 'id' }), clientIp], config })
 * @throws RateLimitConfigError when an option is invalid
 */
export function fromSession(options?: SessionAuthOptions): AuthFunction;
export function fromSession(
  requestOrOptions?: SessionRequest | SessionAuthOptions,
  context?: ExecutionContext,
): Identity | AuthFunction {
  if (isAuthCall(requestOrOptions, context)) {
    defaultResolver ??= new SessionAuthResolver();
    return context === undefined
      ? defaultResolver.identify(requestOrOptions as SessionRequest)
      : defaultResolver.resolve(context);
  }
  const resolver = new SessionAuthResolver(requestOrOptions as SessionAuthOptions | undefined);
  return (request, callContext) =>
    callContext === undefined ? resolver.identify(request) : resolver.resolve(callContext);
}

const fail: FailOption = optionFailure('SessionAuthResolver');
