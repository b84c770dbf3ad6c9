import {
  Inject,
  Injectable,
  Optional,
  type ExecutionContext,
  type OnModuleInit,
} from '@nestjs/common';
import { createPublicKey } from 'node:crypto';
import { optionFailure, rejectUnknownKeys, type FailOption } from '../config-validation.js';
import { AuthResolver } from './auth-resolver.js';
import { EmptyInformation } from './empty-information.js';
import { identityFromFields } from './identity-fields.js';
import type { CallerRequest } from '../http/contexts/context-edge.js';
import { callerFor } from './caller.js';
import type { AuthFunction, Identity } from './identity.js';

/** The JWS algorithms a token may be pinned to. `none` is deliberately not one of them. */
export const JWT_ALGORITHMS = [
  'HS256',
  'HS384',
  'HS512',
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
] as const;

/** One of {@link JWT_ALGORITHMS}. */
export type JwtAlgorithm = (typeof JWT_ALGORITHMS)[number];

/** The claim options shared by {@link createJwtAuth} and {@link JwtAuthResolver}. */
export interface JwtClaimOptions {
  /**
   * The claim holding the user id: a non-empty string, or a number (counted as its string form).
   * Use `'sub'` for the standard subject claim.
   * @default 'user'
   */
  userKey?: string;
  /**
   * The claim holding the caller's group. Absent means `'default'`; when present it must be a
   * non-empty string, anything else is rejected (a group that matches no rule would silently make
   * the caller unlimited).
   * @default 'group'
   */
  groupKey?: string;
  /**
   * Accepted audience(s): when set, the token's `aud` must match one of them. When unset, `aud` is
   * not checked (a token carrying one is still accepted).
   */
  audience?: string | RegExp | ReadonlyArray<string | RegExp>;
  /** Accepted issuer(s): when set, the token's `iss` must be one of them. */
  issuer?: string | readonly string[];
  /**
   * Seconds of clock skew allowed when checking `exp` and `nbf`.
   * @default 0
   */
  clockTolerance?: number;
}

/** Options of {@link JwtAuthResolver}. */
export interface JwtAuthOptions extends JwtClaimOptions {
  /**
   * The key that verifies signatures: the shared secret for `HS*`, the PEM public key (or
   * certificate) for `RS*`, `PS*` and `ES*`.
   */
  secret: string | Buffer;
  /**
   * The algorithms a token may be signed with, pinned so that a token cannot pick its own (and
   * never `none`). Use one family: HMAC (`HS*`) or asymmetric (`RS*`, `PS*`, `ES*`), since one key
   * cannot serve both.
   * @example ['HS256']
   */
  algorithms: readonly string[] | string;
}

/**
 * DI token for {@link JwtAuthOptions}: provide it when you pass the `JwtAuthResolver` class to the
 * module, so Nest can create it.
 * @example
 * providers: [{ provide: JWT_AUTH_OPTIONS, useFactory: (c: ConfigService) => ({
 *   secret: c.getOrThrow('JWT_SECRET'), algorithms: ['HS256'] }), inject: [ConfigService] }]
 */
export const JWT_AUTH_OPTIONS = 'nestjs-ratelimit:JWT_AUTH_OPTIONS';

const OPTION_NAMES: ReadonlySet<string> = new Set([
  'secret',
  'algorithms',
  'userKey',
  'groupKey',
  'audience',
  'issuer',
  'clockTolerance',
]);
const OPTION_HINTS: Readonly<Record<string, string>> = {
  key: 'secret',
  publicKey: 'secret',
  algorithm: 'algorithms',
  user_key: 'userKey',
  group_key: 'groupKey',
  aud: 'audience',
  iss: 'issuer',
  leeway: 'clockTolerance',
};

/**
 * Identifies the caller from an `Authorization: Bearer <token>` JWT: the `user` claim is the user
 * and the `group` claim the group (`'default'` when absent). The token is verified with
 * `@nestjs/jwt` against the pinned algorithms; `exp` and `nbf` are enforced, audience and issuer
 * when configured. A missing header, another scheme, or a malformed, expired, not-yet-valid,
 * forged or wrongly-signed token all throw {@link EmptyInformation} (a 401 by default), never a
 * 500; its message says what was wrong but never repeats the token.
 *
 * `@nestjs/jwt` is an optional peer dependency, loaded the first time it is needed (and when the
 * module starts, if Nest created the resolver). The resolver uses its own `JwtService`, so a
 * `JwtModule` registered elsewhere in the app does not change what it accepts.
 *
 * @example
 * RateLimitModule.forRoot({
 *   authenticate: [new JwtAuthResolver({ secret: process.env.JWT_SECRET!, algorithms: ['HS256'] }), IpAuthResolver],
 *   config,
 * })
 */
@Injectable()
export class JwtAuthResolver extends AuthResolver implements OnModuleInit {
  private readonly secret: string | Buffer;
  private readonly algorithms: JwtAlgorithm[];
  private readonly userKey: string;
  private readonly groupKey: string;
  private readonly audience: string | RegExp | Array<string | RegExp> | undefined;
  private readonly issuer: string | string[] | undefined;
  private readonly clockTolerance: number;

  /**
   * @param options the verification key, pinned algorithms and claim names; Nest injects
   *   {@link JWT_AUTH_OPTIONS}
   * @throws RateLimitConfigError when an option is missing or invalid
   */
  constructor(@Optional() @Inject(JWT_AUTH_OPTIONS) options?: JwtAuthOptions) {
    super();
    if (options === undefined || options === null) {
      fail(
        'options',
        'are required: provide JWT_AUTH_OPTIONS ({ secret, algorithms }) when passing the class, ' +
          "or pass an instance such as new JwtAuthResolver({ secret, algorithms: ['HS256'] }) or createJwtAuth(secret, ['HS256']).",
      );
    }
    if (typeof options !== 'object' || Array.isArray(options)) {
      fail('options', `must be an object { secret, algorithms, ... }, got ${typeof options}.`);
    }
    rejectUnknownKeys(options, OPTION_NAMES, OPTION_HINTS, 'a JwtAuthResolver option', fail);
    this.algorithms = parseAlgorithms(options.algorithms);
    this.secret = parseSecret(options.secret, this.algorithms);
    this.userKey = parseClaimName('userKey', options.userKey ?? 'user');
    this.groupKey = parseClaimName('groupKey', options.groupKey ?? 'group');
    this.audience = parseAudience(options.audience);
    this.issuer = parseIssuer(options.issuer);
    const clockTolerance = options.clockTolerance ?? 0;
    if (
      typeof clockTolerance !== 'number' ||
      !Number.isFinite(clockTolerance) ||
      clockTolerance < 0
    ) {
      fail(
        'clockTolerance',
        `must be a number of seconds, 0 or more, got ${JSON.stringify(clockTolerance)}.`,
      );
    }
    this.clockTolerance = clockTolerance;
  }

  /**
   * Loads `@nestjs/jwt` while the app starts, so a missing install stops the start-up with a clear
   * message instead of failing the first request.
   */
  async onModuleInit(): Promise<void> {
    await loadVerifier();
  }

  /**
   * Identifies the caller of the current call: the bearer token of its HTTP request (of a GraphQL
   * call too) or of its WebSocket handshake (the `Authorization` header, or `auth.token`).
   */
  async resolve(context: ExecutionContext): Promise<Identity> {
    return this.identify(callerFor(context, 'JwtAuthResolver'));
  }

  /**
   * Identifies the caller of `request` (what {@link createJwtAuth} calls).
   * @throws EmptyInformation when there is no valid bearer token with a usable user claim
   * @throws Error when `@nestjs/jwt` is not installed
   */
  async identify(request: Pick<CallerRequest, 'headers' | 'auth'>): Promise<Identity> {
    const token = bearerToken(request.headers.authorization ?? handshakeToken(request.auth));
    const verifier = await loadVerifier();
    let payload: unknown;
    try {
      payload = await verifier.verifyAsync(token, {
        secret: this.secret,
        algorithms: this.algorithms,
        audience: this.audience,
        issuer: this.issuer,
        clockTolerance: this.clockTolerance,
      });
    } catch (error) {
      // Everything here is caused by the token the client sent; the configuration was checked in
      // the constructor. So it is always "not identified", never a 500.
      throw new EmptyInformation(verificationFailure(error));
    }
    if (payload === null || typeof payload !== 'object' || Array.isArray(payload)) {
      throw new EmptyInformation('The bearer token has no claims object');
    }
    return identityFromClaims(payload as Record<string, unknown>, this.userKey, this.groupKey);
  }
}

/**
 * The JWT resolver as an auth function, with the original library's signature. Options are
 * validated once, when `createJwtAuth` is called.
 *
 * @param secret the shared secret (`HS*`) or PEM public key (`RS*`, `PS*`, `ES*`)
 * @param algorithms the accepted algorithm or algorithms; `none` is rejected
 * @example
 * RateLimitModule.forRoot({ authenticate: createJwtAuth(process.env.JWT_SECRET!, ['HS256']), config })
 * createJwtAuth(publicKeyPem, 'RS256', { userKey: 'sub', issuer: 'https://auth.example.com/' })
 * @throws RateLimitConfigError when an option is invalid
 */
export function createJwtAuth(
  secret: string | Buffer,
  algorithms: readonly string[] | string,
  options: JwtClaimOptions = {},
): AuthFunction {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    fail('options', `must be an object such as { userKey: 'sub' }, got ${typeof options}.`);
  }
  if ('secret' in options || 'algorithms' in options) {
    fail('options', 'must not repeat secret or algorithms; they are the first two arguments.');
  }
  const resolver = new JwtAuthResolver({ ...options, secret, algorithms });
  return (request, context) =>
    context === undefined ? resolver.identify(request) : resolver.resolve(context);
}

// ---------------------------------------------------------------------------------------------
// The lazily loaded verifier

/**
 * What the resolver needs from `@nestjs/jwt`'s `JwtService`. Declared here, rather than imported,
 * so that no type of the optional peer dependency appears in this package's declarations.
 */
interface JwtVerifier {
  verifyAsync(
    token: string,
    options: {
      secret: string | Buffer;
      algorithms: JwtAlgorithm[];
      audience?: string | RegExp | Array<string | RegExp>;
      issuer?: string | string[];
      clockTolerance: number;
    },
  ): Promise<unknown>;
}

let verifier: Promise<JwtVerifier> | undefined;

/** Imports `@nestjs/jwt` once per process; every resolver shares the result (or the failure). */
function loadVerifier(): Promise<JwtVerifier> {
  verifier ??= import('@nestjs/jwt').then(
    // A bare JwtService: no module-level secret or options that could widen what is accepted.
    (jwt) => new jwt.JwtService() as JwtVerifier,
    (cause: unknown) => {
      throw new Error(
        'JwtAuthResolver / createJwtAuth need the optional peer dependency @nestjs/jwt: run `npm install @nestjs/jwt`.',
        { cause },
      );
    },
  );
  return verifier;
}

// ---------------------------------------------------------------------------------------------
// Per request

/**
 * The token a socket.io client sent as `auth: { token }`, as an `Authorization` value: with or
 * without the `Bearer ` scheme.
 */
function handshakeToken(auth: unknown): string | undefined {
  const token = (auth as { token?: unknown } | undefined)?.token;
  if (typeof token !== 'string') return undefined;
  return /^bearer[ \t]/i.test(token.trim()) ? token : `Bearer ${token}`;
}

/** The token of `Authorization: Bearer <token>`; scheme case-insensitive, whitespace tolerated. */
function bearerToken(header: string | string[] | undefined): string {
  if (typeof header !== 'string' || header.trim() === '') {
    throw new EmptyInformation('No Authorization header');
  }
  const parts = header.trim().split(/[ \t]+/);
  if (parts[0]?.toLowerCase() !== 'bearer') {
    throw new EmptyInformation('The Authorization header is not a Bearer token');
  }
  if (parts.length === 1) {
    throw new EmptyInformation('The bearer token is empty');
  }
  if (parts.length > 2) {
    throw new EmptyInformation('The Authorization header has more than one token');
  }
  return parts[1];
}

/**
 * A short reason for the 401 body, from jsonwebtoken's error. Only fixed phrases are used: its
 * messages can contain the expected audience or issuer, which the client has no need to learn.
 */
function verificationFailure(error: unknown): string {
  const name = error instanceof Error ? error.name : '';
  const message = error instanceof Error ? error.message : '';
  if (name === 'TokenExpiredError') return 'The bearer token has expired';
  if (name === 'NotBeforeError') return 'The bearer token is not valid yet';
  if (message === 'invalid signature') return 'The bearer token has an invalid signature';
  if (message === 'invalid algorithm')
    return 'The bearer token uses an algorithm that is not allowed';
  if (message === 'jwt signature is required') return 'The bearer token is not signed';
  if (message.startsWith('jwt audience invalid')) return 'The bearer token is for another audience';
  if (message.startsWith('jwt issuer invalid')) return 'The bearer token has another issuer';
  if (message === 'jwt malformed' || message === 'invalid token') {
    return 'The bearer token is malformed';
  }
  return 'The bearer token is invalid';
}

function identityFromClaims(
  claims: Record<string, unknown>,
  userKey: string,
  groupKey: string,
): Identity {
  return identityFromFields(claims, userKey, groupKey, {
    noUser: `The bearer token has no "${userKey}" claim`,
    badUser: `The bearer token's "${userKey}" claim is not a string or number`,
    badGroup: `The bearer token's "${groupKey}" claim is not a non-empty string`,
  });
}

// ---------------------------------------------------------------------------------------------
// Options

function parseAlgorithms(value: unknown): JwtAlgorithm[] {
  const list: unknown[] = typeof value === 'string' ? [value] : Array.isArray(value) ? value : [];
  if (list.length === 0) {
    fail(
      'algorithms',
      `must name at least one algorithm, such as ['HS256'], got ${JSON.stringify(value) ?? String(value)}.`,
    );
  }
  const known: ReadonlySet<string> = new Set(JWT_ALGORITHMS);
  for (const algorithm of list) {
    if (typeof algorithm === 'string' && algorithm.toLowerCase() === 'none') {
      fail(
        'algorithms',
        "must not contain 'none': an unsigned token proves nothing. Pin the algorithm your issuer signs with, such as 'HS256' or 'RS256'.",
      );
    }
    if (typeof algorithm !== 'string' || !known.has(algorithm)) {
      const upper = typeof algorithm === 'string' ? algorithm.toUpperCase() : '';
      const hint = known.has(upper) ? ` (did you mean '${upper}'?)` : '';
      fail(
        'algorithms',
        `contains ${JSON.stringify(algorithm)}, which is not a supported JWS algorithm${hint}. ` +
          `Use one of ${JWT_ALGORITHMS.join(', ')}.`,
      );
    }
  }
  const algorithms = [...new Set(list as JwtAlgorithm[])];
  const hmac = algorithms.filter((algorithm) => algorithm.startsWith('HS'));
  if (hmac.length > 0 && hmac.length < algorithms.length) {
    fail(
      'algorithms',
      `mixes HMAC (${hmac.join(', ')}) with public-key algorithms; one key cannot verify both ` +
        '(and allowing both invites algorithm-confusion attacks). Pin one family.',
    );
  }
  return algorithms;
}

/** Which key types each public-key family verifies with (as Node's `asymmetricKeyType` names them). */
const ASYMMETRIC_KEY_TYPES: Readonly<Record<string, readonly string[]>> = {
  RS: ['rsa'],
  PS: ['rsa', 'rsa-pss'],
  ES: ['ec'],
};

function parseSecret(value: unknown, algorithms: readonly JwtAlgorithm[]): string | Buffer {
  if (!(typeof value === 'string' || Buffer.isBuffer(value)) || value.length === 0) {
    fail(
      'secret',
      'must be a non-empty string or Buffer: the shared secret for HS* algorithms, the PEM public key for RS*, PS* and ES*.',
    );
  }
  // Whether (and as what) the key parses decides which algorithms it can verify; checking now
  // turns "every token is rejected" into a start-up error.
  let keyType: string | undefined;
  try {
    keyType = createPublicKey(value).asymmetricKeyType ?? 'unknown';
  } catch {
    keyType = undefined;
  }
  const hmac = algorithms[0].startsWith('HS');
  if (hmac && keyType !== undefined) {
    fail(
      'secret',
      `is a PEM key, but the algorithms (${algorithms.join(', ')}) are HMAC; pin 'RS256' (or the algorithm your issuer uses) to verify with a public key.`,
    );
  }
  if (!hmac) {
    if (keyType === undefined) {
      fail(
        'secret',
        `must be a PEM public key (or certificate) for ${algorithms.join(', ')}, such as '-----BEGIN PUBLIC KEY-----...'.`,
      );
    }
    for (const algorithm of algorithms) {
      const family = algorithm.slice(0, 2);
      if (!(ASYMMETRIC_KEY_TYPES[family] ?? []).includes(keyType)) {
        fail(
          'secret',
          `is a key of type ${keyType}, which cannot verify ${algorithm}: ${family}* needs ` +
            `${family === 'ES' ? 'an EC' : 'an RSA'} key. Pin the algorithms that match your key.`,
        );
      }
    }
  }
  return value;
}

function parseClaimName(option: string, value: unknown): string {
  if (typeof value !== 'string' || value.length === 0) {
    fail(option, `must be the non-empty name of a claim, got ${JSON.stringify(value)}.`);
  }
  return value;
}

function parseAudience(value: unknown): string | RegExp | Array<string | RegExp> | undefined {
  if (value === undefined) return undefined;
  const isAudience = (entry: unknown): entry is string | RegExp =>
    (typeof entry === 'string' && entry.length > 0) || entry instanceof RegExp;
  if (isAudience(value)) return value;
  if (Array.isArray(value) && value.length > 0 && value.every(isAudience)) return [...value];
  return fail(
    'audience',
    'must be a non-empty string, a RegExp, or a non-empty array of them (the accepted `aud` values).',
  );
}

function parseIssuer(value: unknown): string | string[] | undefined {
  if (value === undefined) return undefined;
  const isIssuer = (entry: unknown): entry is string =>
    typeof entry === 'string' && entry.length > 0;
  if (isIssuer(value)) return value;
  if (Array.isArray(value) && value.length > 0 && value.every(isIssuer)) return [...value];
  return fail(
    'issuer',
    'must be a non-empty string or a non-empty array of strings (the accepted `iss` values).',
  );
}

const fail: FailOption = optionFailure('JwtAuthResolver');
