import { ExecutionContextHost } from '@nestjs/core/helpers/execution-context-host.js';
import { JwtService } from '@nestjs/jwt';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { Test } from '@nestjs/testing';
import { createHmac, generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import request from 'supertest';
import { expectInvalidOption } from '../../test/support/config-errors.js';
import { createResolverProbe } from '../../test/support/resolver-probe.js';
import { RateLimitConfigError } from '../rate-limit-config.error.js';
import { EmptyInformation } from './empty-information.js';
import type { IdentityLike, RateLimitRequest } from './identity.js';
import {
  JWT_AUTH_OPTIONS,
  JwtAuthResolver,
  createJwtAuth,
  type JwtAuthOptions,
} from './jwt.auth-resolver.js';

const SECRET = 'test-key';
/** Signs real tokens; `sign(payload, { algorithm, expiresIn, ... })`. */
const signer = new JwtService({ secret: SECRET });

function requestWith(headers: Record<string, string>): RateLimitRequest {
  return { headers } as RateLimitRequest;
}

function bearer(token: string): RateLimitRequest {
  return requestWith({ authorization: `Bearer ${token}` });
}

/** Runs the function form and the class form (through a real ExecutionContext) on one request. */
async function bothForms(
  options: JwtAuthOptions,
  req: RateLimitRequest,
): Promise<[IdentityLike, IdentityLike]> {
  const { secret, algorithms, ...claimOptions } = options;
  const context = new ExecutionContextHost([req]);
  return Promise.all([
    createJwtAuth(secret, algorithms, claimOptions)(req, context),
    new JwtAuthResolver(options).resolve(context),
  ]);
}

async function identify(req: RateLimitRequest, options: Partial<JwtAuthOptions> = {}) {
  const [viaFunction, viaClass] = await bothForms(
    { secret: SECRET, algorithms: ['HS256', 'HS512'], ...options },
    req,
  );
  expect(viaClass).toEqual(viaFunction);
  return viaFunction;
}

/** Both forms must reject with EmptyInformation (a 401); returns the reason. */
async function rejection(
  req: RateLimitRequest,
  options: Partial<JwtAuthOptions> = {},
): Promise<string> {
  const all: JwtAuthOptions = { secret: SECRET, algorithms: ['HS256', 'HS512'], ...options };
  const { secret, algorithms, ...claimOptions } = all;
  const context = new ExecutionContextHost([req]);
  const reasons: string[] = [];
  for (const attempt of [
    () => createJwtAuth(secret, algorithms, claimOptions)(req, context),
    () => new JwtAuthResolver(all).resolve(context),
  ]) {
    const error: unknown = await Promise.resolve()
      .then(attempt)
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(error).toBeInstanceOf(EmptyInformation);
    expect((error as EmptyInformation).getStatus()).toBe(401);
    reasons.push((error as EmptyInformation).message);
  }
  expect(reasons[1]).toBe(reasons[0]);
  // The reason goes into the 401 body: it must never echo the credentials.
  const header = req.headers.authorization;
  const token = typeof header === 'string' ? header.trim().split(/\s+/).pop() : undefined;
  if (token && token.length > 8) expect(reasons[0]).not.toContain(token);
  return reasons[0]!;
}

function base64url(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

const now = () => Math.floor(Date.now() / 1000);

describe('createJwtAuth / JwtAuthResolver: the original test cases', () => {
  it.each(['HS256', 'HS512'] as const)('reads user and group from an %s token', async (alg) => {
    const token = signer.sign({ user: 'user', group: 'group' }, { algorithm: alg });
    expect(await identify(bearer(token))).toEqual({ user: 'user', group: 'group' });
  });

  it("defaults the group to 'default'", async () => {
    const token = signer.sign({ user: 'user' });
    expect(await identify(bearer(token))).toEqual({ user: 'user', group: 'default' });
  });

  it('reads another user claim with userKey', async () => {
    const token = signer.sign({ user_id: 'user' });
    expect(await identify(bearer(token), { userKey: 'user_id' })).toEqual({
      user: 'user',
      group: 'default',
    });
  });

  it('rejects a request without headers', async () => {
    expect(await rejection(requestWith({}))).toBe('No Authorization header');
  });

  it('rejects a bearer token in a header with another name', async () => {
    const token = signer.sign({ user: 'user' });
    expect(await rejection(requestWith({ wrongkey: `Bearer ${token}` }))).toBe(
      'No Authorization header',
    );
  });

  it('rejects a token without the user claim', async () => {
    const token = signer.sign({ username: 'user' });
    expect(await rejection(bearer(token))).toBe('The bearer token has no "user" claim');
  });
});

describe('createJwtAuth / JwtAuthResolver: the Authorization header', () => {
  const token = signer.sign({ user: 'user' });

  it.each([
    ['lower-case bearer', `bearer ${token}`],
    ['upper-case BEARER', `BEARER ${token}`],
    ['extra spaces', `   Bearer     ${token}   `],
    ['a tab', `Bearer\t${token}`],
  ])('accepts %s', async (_name, header) => {
    expect(await identify(requestWith({ authorization: header }))).toEqual({
      user: 'user',
      group: 'default',
    });
  });

  it.each([
    ['an empty header', '', 'No Authorization header'],
    ['only spaces', '   ', 'No Authorization header'],
    ['another scheme', `Basic ${token}`, 'The Authorization header is not a Bearer token'],
    ['a token without scheme', token, 'The Authorization header is not a Bearer token'],
    ['the scheme alone', 'Bearer', 'The bearer token is empty'],
    ['the scheme and spaces', 'Bearer    ', 'The bearer token is empty'],
    ['two tokens', `Bearer ${token} ${token}`, 'The Authorization header has more than one token'],
  ])('rejects %s', async (_name, header, reason) => {
    expect(await rejection(requestWith({ authorization: header }))).toBe(reason);
  });
});

describe('createJwtAuth / JwtAuthResolver: verification', () => {
  it('rejects an expired token', async () => {
    const token = signer.sign({ user: 'user' }, { expiresIn: -10 });
    expect(await rejection(bearer(token))).toBe('The bearer token has expired');
  });

  it('rejects a token whose nbf is in the future, unless within clockTolerance', async () => {
    const token = signer.sign({ user: 'user' }, { notBefore: 60 });
    expect(await rejection(bearer(token))).toBe('The bearer token is not valid yet');
    expect(await identify(bearer(token), { clockTolerance: 120 })).toEqual({
      user: 'user',
      group: 'default',
    });
  });

  it('accepts an expired token within clockTolerance', async () => {
    const token = signer.sign({ user: 'user' }, { expiresIn: -10 });
    expect(await identify(bearer(token), { clockTolerance: 30 })).toEqual({
      user: 'user',
      group: 'default',
    });
  });

  it('rejects a token signed with another secret', async () => {
    const forged = new JwtService({ secret: 'other-key' }).sign({ user: 'admin', group: 'admin' });
    expect(await rejection(bearer(forged))).toBe('The bearer token has an invalid signature');
  });

  it('rejects an algorithm that is not pinned, even with the right secret', async () => {
    const token = signer.sign({ user: 'user' }, { algorithm: 'HS384' });
    expect(await rejection(bearer(token), { algorithms: ['HS256'] })).toBe(
      'The bearer token uses an algorithm that is not allowed',
    );
  });

  it('rejects an unsigned alg:none token', async () => {
    const unsigned = `${base64url({ alg: 'none', typ: 'JWT' })}.${base64url({ user: 'admin', iat: now() })}.`;
    expect(await rejection(bearer(unsigned))).toBe('The bearer token is not signed');
    // With a signature part that is not empty, `none` is simply not a pinned algorithm.
    expect(await rejection(bearer(`${unsigned}c2ln`))).toBe(
      'The bearer token uses an algorithm that is not allowed',
    );
  });

  it('checks the audience when configured, and ignores aud when not', async () => {
    const forApi = signer.sign({ user: 'user' }, { audience: 'api' });
    const forOther = signer.sign({ user: 'user' }, { audience: 'other' });
    const noAudience = signer.sign({ user: 'user' });
    // The original rejected every token carrying `aud`; without the option it is not checked.
    expect(await identify(bearer(forOther))).toEqual({ user: 'user', group: 'default' });
    expect(await identify(bearer(forApi), { audience: 'api' })).toEqual({
      user: 'user',
      group: 'default',
    });
    expect(await identify(bearer(forApi), { audience: ['web', /^ap/] })).toEqual({
      user: 'user',
      group: 'default',
    });
    expect(await rejection(bearer(forOther), { audience: 'api' })).toBe(
      'The bearer token is for another audience',
    );
    expect(await rejection(bearer(noAudience), { audience: 'api' })).toBe(
      'The bearer token is for another audience',
    );
  });

  it('checks the issuer when configured', async () => {
    const token = signer.sign({ user: 'user' }, { issuer: 'https://auth.example.com/' });
    expect(await identify(bearer(token), { issuer: 'https://auth.example.com/' })).toEqual({
      user: 'user',
      group: 'default',
    });
    expect(await rejection(bearer(token), { issuer: ['https://other.example.com/'] })).toBe(
      'The bearer token has another issuer',
    );
  });

  it.each([
    ['not.a.jwt', 'The bearer token is malformed'],
    ['abc', 'The bearer token is malformed'],
    [`${base64url({ alg: 'HS256' })}.%%%.x`, 'The bearer token is malformed'],
    [
      `${base64url({ alg: 'HS256' })}.${Buffer.from('{not json').toString('base64url')}.x`,
      /^The bearer token /,
    ],
  ])('rejects the garbage token %s', async (token, reason) => {
    expect(await rejection(bearer(token))).toMatch(reason);
  });

  it('rejects a token whose payload is not a claims object', async () => {
    const token = signer.sign('just a string');
    expect(await rejection(bearer(token))).toBe('The bearer token has no claims object');
  });
});

describe('createJwtAuth / JwtAuthResolver: claims', () => {
  it('stringifies a numeric user', async () => {
    const token = signer.sign({ user: 42, group: 'pro' });
    expect(await identify(bearer(token))).toEqual({ user: '42', group: 'pro' });
  });

  it('reads sub and a custom group claim', async () => {
    const token = signer.sign({ sub: 'u-1', plan: 'pro' });
    expect(await identify(bearer(token), { userKey: 'sub', groupKey: 'plan' })).toEqual({
      user: 'u-1',
      group: 'pro',
    });
  });

  it.each<[string, Record<string, unknown>, string]>([
    ['an empty user', { user: '' }, 'The bearer token has no "user" claim'],
    ['a null user', { user: null }, 'The bearer token has no "user" claim'],
    [
      'an object user',
      { user: { id: 1 } },
      'The bearer token\'s "user" claim is not a string or number',
    ],
    ['a list user', { user: ['a'] }, 'The bearer token\'s "user" claim is not a string or number'],
    [
      'a numeric group',
      { user: 'u', group: 1 },
      'The bearer token\'s "group" claim is not a non-empty string',
    ],
    [
      'a null group',
      { user: 'u', group: null },
      'The bearer token\'s "group" claim is not a non-empty string',
    ],
    [
      'a list group',
      { user: 'u', group: ['admin'] },
      'The bearer token\'s "group" claim is not a non-empty string',
    ],
    [
      'an empty group',
      { user: 'u', group: '' },
      'The bearer token\'s "group" claim is not a non-empty string',
    ],
  ])('rejects %s', async (_name, claims, reason) => {
    expect(await rejection(bearer(signer.sign(claims)))).toBe(reason);
  });

  it('reads own claims only, never inherited properties', async () => {
    const token = signer.sign({ user: 'u' });
    expect(await rejection(bearer(token), { userKey: 'constructor' })).toBe(
      'The bearer token has no "constructor" claim',
    );
    expect(await identify(bearer(token), { groupKey: 'toString' })).toEqual({
      user: 'u',
      group: 'default',
    });
  });
});

describe('createJwtAuth / JwtAuthResolver: public-key algorithms', () => {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const publicPem = rsa.publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const rsaSigner = new JwtService({
    privateKey: rsa.privateKey.export({ type: 'pkcs8', format: 'pem' }),
  });

  it('verifies RS256 tokens with the PEM public key', async () => {
    const token = rsaSigner.sign({ user: 'u', group: 'g' }, { algorithm: 'RS256' });
    expect(await identify(bearer(token), { secret: publicPem, algorithms: 'RS256' })).toEqual({
      user: 'u',
      group: 'g',
    });
  });

  it('rejects an HS256 token keyed with the public key (algorithm confusion)', async () => {
    const header = base64url({ alg: 'HS256', typ: 'JWT' });
    const payload = base64url({ user: 'admin', iat: now() });
    const signature = createHmac('sha256', publicPem)
      .update(`${header}.${payload}`)
      .digest('base64url');
    expect(
      await rejection(bearer(`${header}.${payload}.${signature}`), {
        secret: publicPem,
        algorithms: ['RS256'],
      }),
    ).toBe('The bearer token uses an algorithm that is not allowed');
  });
});

describe('JwtAuthResolver options', () => {
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const ecPem = ec.publicKey.export({ type: 'spki', format: 'pem' }).toString();

  it.each<[string, unknown, RegExp]>([
    ['no algorithms', { secret: SECRET, algorithms: [] }, /"algorithms".*at least one/],
    ['alg none', { secret: SECRET, algorithms: ['none'] }, /"algorithms".*'none'/],
    ['NONE among others', { secret: SECRET, algorithms: ['HS256', 'NONE'] }, /'none'/],
    ['a lower-case name', { secret: SECRET, algorithms: 'hs256' }, /did you mean 'HS256'/],
    ['an unknown algorithm', { secret: SECRET, algorithms: ['HS257'] }, /"HS257".*not a supported/],
    ['HMAC mixed with RSA', { secret: SECRET, algorithms: ['HS256', 'RS256'] }, /mixes HMAC/],
    ['an empty secret', { secret: '', algorithms: ['HS256'] }, /"secret".*non-empty/],
    ['a numeric secret', { secret: 1, algorithms: ['HS256'] }, /"secret"/],
    ['a PEM key for HS256', { secret: ecPem, algorithms: ['HS256'] }, /"secret".*PEM key.*HMAC/],
    ['a plain secret for RS256', { secret: SECRET, algorithms: ['RS256'] }, /PEM public key/],
    ['an EC key for RS256', { secret: ecPem, algorithms: ['RS256'] }, /cannot verify RS256/],
    [
      'a negative clockTolerance',
      { secret: SECRET, algorithms: 'HS256', clockTolerance: -1 },
      /"clockTolerance"/,
    ],
    ['an empty userKey', { secret: SECRET, algorithms: 'HS256', userKey: '' }, /"userKey"/],
    ['an empty audience', { secret: SECRET, algorithms: 'HS256', audience: '' }, /"audience"/],
    ['a numeric issuer', { secret: SECRET, algorithms: 'HS256', issuer: 1 }, /"issuer"/],
    [
      'an unknown option',
      { secret: SECRET, algorithms: 'HS256', leeway: 5 },
      /"leeway".*"clockTolerance"/,
    ],
    ['no options', undefined, /provide JWT_AUTH_OPTIONS/],
  ])('reject %s with RateLimitConfigError', (_name, options, message) => {
    const create = () => new JwtAuthResolver(options as JwtAuthOptions);
    expectInvalidOption(create, message);
  });

  it('accepts an EC key for ES256', () => {
    expect(() => new JwtAuthResolver({ secret: ecPem, algorithms: ['ES256'] })).not.toThrow();
  });

  it('validates createJwtAuth arguments at once', () => {
    expect(() => createJwtAuth(SECRET, ['none'])).toThrow(RateLimitConfigError);
    expect(() => createJwtAuth(SECRET, 'HS256', { userKey: '' })).toThrow(RateLimitConfigError);
    expect(() =>
      createJwtAuth(SECRET, 'HS256', { secret: 'x' } as unknown as Record<string, never>),
    ).toThrow(/first two arguments/);
  });

  it('fails to be created by Nest without JWT_AUTH_OPTIONS, with a clear message', async () => {
    await expect(
      Test.createTestingModule({ providers: [JwtAuthResolver] }).compile(),
    ).rejects.toThrow(/JWT_AUTH_OPTIONS/);
  });

  it('does not import @nestjs/jwt statically (it is an optional peer dependency)', () => {
    const source = readFileSync(new URL('./jwt.auth-resolver.ts', import.meta.url), 'utf8');
    expect(source).not.toMatch(/^\s*import\s[^;]*from\s+['"]@nestjs\/jwt['"]/m);
    expect(source).toMatch(/await import\(|import\('@nestjs\/jwt'\)/);
  });
});

// ---------------------------------------------------------------------------------------------
// Through a real Nest app: a bad token is a 401, never a 500.

describe('JwtAuthResolver through a real Nest app', () => {
  let app: NestExpressApplication;

  beforeAll(async () => {
    app = await createResolverProbe({
      resolver: JwtAuthResolver,
      authenticate: createJwtAuth(SECRET, ['HS256']),
      providers: [
        { provide: JWT_AUTH_OPTIONS, useValue: { secret: SECRET, algorithms: ['HS256'] } },
      ],
    });
  });
  afterAll(() => app?.close());

  it.each(['/class', '/function'])('%s: a valid token identifies the caller', async (path) => {
    const token = signer.sign({ user: 'u-1', group: 'pro' });
    const res = await request(app.getHttpServer())
      .get(path)
      .set('Authorization', `Bearer ${token}`)
      .expect(200);
    expect(res.body).toEqual({ user: 'u-1', group: 'pro' });
  });

  const badTokens: Array<[string, () => string]> = [
    ['expired', () => signer.sign({ user: 'u' }, { expiresIn: -10 })],
    ['forged', () => new JwtService({ secret: 'other' }).sign({ user: 'u' })],
    ['garbage', () => 'definitely-not-a-jwt'],
    ['alg none', () => `${base64url({ alg: 'none' })}.${base64url({ user: 'u' })}.`],
  ];
  it.each(['/class', '/function'])('%s: bad tokens give a 401, not a 500', async (path) => {
    for (const [name, make] of badTokens) {
      const res = await request(app.getHttpServer())
        .get(path)
        .set('Authorization', `Bearer ${make()}`);
      expect({ name, status: res.status }).toEqual({ name, status: 401 });
      expect(res.body).toMatchObject({ statusCode: 401, error: 'Unauthorized' });
    }
    await request(app.getHttpServer()).get(path).expect(401);
  });
});
