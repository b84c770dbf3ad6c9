import type { NestExpressApplication } from '@nestjs/platform-express';
import { Test } from '@nestjs/testing';
import { networkInterfaces } from 'node:os';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { captureLogs } from '../../test/support/captured-logs.js';
import { expectInvalidOption } from '../../test/support/config-errors.js';
import { askBothForms, createResolverProbe } from '../../test/support/resolver-probe.js';
import { EmptyInformation } from './empty-information.js';
import type { RateLimitRequest } from './identity.js';
import {
  IP_AUTH_OPTIONS,
  IpAuthResolver,
  clientIp,
  resolveClientAddress,
  type ClientAddressRequest,
  type IpAuthOptions,
} from './ip.auth-resolver.js';

// ---------------------------------------------------------------------------------------------
// A real Nest app whose routes answer with what the resolver says about the caller.

interface AppSetup {
  /** Provided as IP_AUTH_OPTIONS (class form) and passed to clientIp() (function form). */
  options?: IpAuthOptions;
  /** Express's own `trust proxy` setting. */
  expressTrustProxy?: unknown;
}

function createApp({ options, expressTrustProxy }: AppSetup = {}) {
  return createResolverProbe({
    // The class is registered bare: with no IP_AUTH_OPTIONS provider Nest must still create it.
    resolver: IpAuthResolver,
    authenticate: clientIp(options),
    providers: options ? [{ provide: IP_AUTH_OPTIONS, useValue: options }] : [],
    // The identity, plus the raw socket peer for the record.
    answer: (identity, req) => ({ identity, peer: req.socket.remoteAddress }),
    configure(app) {
      if (expressTrustProxy !== undefined) app.set('trust proxy', expressTrustProxy);
    },
  });
}

type Headers = Record<string, string>;

/** Asks both forms; they must agree. Returns the identity and the raw peer address. */
function whoAmI(
  target: Parameters<typeof request>[0],
  headers: Headers = {},
): Promise<{ identity: { user: string; group: string }; peer: string }> {
  return askBothForms(request(target), 200, headers);
}

// Two tests listen on IPv6 loopback. They are never skipped: on a host without ::1 they fail
// and say so, because a silently skipped test would claim coverage it does not give.
const hasIpv6Loopback = Object.values(networkInterfaces()).some((addresses) =>
  addresses?.some((address) => address.internal && address.address === '::1'),
);
function requireIpv6Loopback(): void {
  if (!hasIpv6Loopback) {
    throw new Error(
      'This test needs an IPv6 loopback interface (::1); enable IPv6 on lo to run it.',
    );
  }
}

describe('IpAuthResolver through a real Nest app (supertest on loopback)', () => {
  let app: NestExpressApplication;
  afterEach(() => app?.close());

  it('counts a plain loopback peer as 127.0.0.1', async () => {
    app = await createApp();
    const { identity, peer } = await whoAmI(app.getHttpServer());
    // supertest binds the server to 127.0.0.1 and connects there: a plain IPv4 socket.
    expect(peer).toBe('127.0.0.1');
    expect(identity).toEqual({ user: '127.0.0.1', group: 'default' });
  });

  it('ignores X-Forwarded-For and X-Real-IP from an untrusted peer', async () => {
    app = await createApp();
    const { identity } = await whoAmI(app.getHttpServer(), {
      'X-Forwarded-For': '1.1.1.1, 70.41.3.18, 150.172.238.178',
      'X-Real-IP': '70.41.3.18',
    });
    expect(identity.user).toBe('127.0.0.1');
  });

  it('with trustProxy false, ignores even the Express trust proxy setting', async () => {
    app = await createApp({ options: { trustProxy: false }, expressTrustProxy: true });
    const { identity } = await whoAmI(app.getHttpServer(), { 'X-Forwarded-For': '203.0.113.7' });
    expect(identity.user).toBe('127.0.0.1');
  });

  it("with trustProxy 'loopback', takes the right-most untrusted X-Forwarded-For entry", async () => {
    app = await createApp({ options: { trustProxy: 'loopback' } });
    const { identity } = await whoAmI(app.getHttpServer(), {
      'X-Forwarded-For': '203.0.113.7, 198.51.100.9',
    });
    // 198.51.100.9 was added by our trusted peer; 203.0.113.7 is only that client's claim.
    expect(identity).toEqual({ user: '198.51.100.9', group: 'default' });
  });

  it("with trustProxy 'loopback', never reads X-Real-IP", async () => {
    app = await createApp({ options: { trustProxy: 'loopback' } });
    const { identity } = await whoAmI(app.getHttpServer(), { 'X-Real-IP': '198.51.100.9' });
    expect(identity.user).toBe('127.0.0.1');
  });

  it("follows Express's app.set('trust proxy', ...) by default", async () => {
    app = await createApp({ expressTrustProxy: 'loopback' });
    const { identity } = await whoAmI(app.getHttpServer(), {
      'X-Forwarded-For': '203.0.113.7, 198.51.100.9',
    });
    expect(identity.user).toBe('198.51.100.9');
  });

  it("follows Express's trust proxy hop count by default", async () => {
    app = await createApp({ expressTrustProxy: 2 });
    const { identity } = await whoAmI(app.getHttpServer(), {
      'X-Forwarded-For': '203.0.113.7, 198.51.100.9, 192.0.2.1',
    });
    // Hop 0 (the loopback peer) and hop 1 (192.0.2.1) are trusted; 198.51.100.9 is the client.
    expect(identity.user).toBe('198.51.100.9');
  });

  it('unmaps and groups IPv6 addresses a trusted proxy forwards', async () => {
    app = await createApp({ options: { trustProxy: 'loopback' } });
    expect(
      (await whoAmI(app.getHttpServer(), { 'X-Forwarded-For': '::ffff:203.0.113.7' })).identity
        .user,
    ).toBe('203.0.113.7');
    expect(
      (await whoAmI(app.getHttpServer(), { 'X-Forwarded-For': '2001:db8:1:2:3:4:5:6' })).identity
        .user,
    ).toBe('2001:db8:1:2::/64');
  });

  it('falls back to the trusted peer on a malformed forwarded entry, never a 500', async () => {
    app = await createApp({ options: { trustProxy: 'loopback' } });
    for (const forwarded of ['garbage', '198.51.100.9, unknown', '999.1.1.1', ',,,', '0x7f.1']) {
      const { identity } = await whoAmI(app.getHttpServer(), { 'X-Forwarded-For': forwarded });
      expect(identity.user).toBe('127.0.0.1');
    }
  });

  it("recovers when Express's trust proxy lets garbage into request.ip", async () => {
    // With `trust proxy` true Express returns the left-most entry as is, even when it is not an
    // address; the resolver redoes Express's walk and keeps the nearest usable entry.
    app = await createApp({ expressTrustProxy: true });
    expect(
      (await whoAmI(app.getHttpServer(), { 'X-Forwarded-For': 'garbage' })).identity.user,
    ).toBe('127.0.0.1');
    expect(
      (await whoAmI(app.getHttpServer(), { 'X-Forwarded-For': 'garbage, 198.51.100.9' })).identity
        .user,
    ).toBe('198.51.100.9');
  });

  it.each<[string, unknown, string, string]>([
    ['a list', 'loopback', '198.51.100.9, garbage', '127.0.0.1'],
    ['a hop count', 2, 'garbage, 198.51.100.9', '198.51.100.9'],
    [
      'a function',
      (_address: string, hop: number) => hop < 2,
      'garbage, 198.51.100.9',
      '198.51.100.9',
    ],
  ])(
    "recovers from garbage in request.ip with Express's trust proxy set to %s",
    async (_name, setting, forwarded, user) => {
      app = await createApp({ expressTrustProxy: setting });
      const { identity } = await whoAmI(app.getHttpServer(), { 'X-Forwarded-For': forwarded });
      expect(identity.user).toBe(user);
    },
  );

  it('unmaps an IPv4 peer of a dual-stack socket (::ffff:127.0.0.1)', async () => {
    requireIpv6Loopback();
    app = await createApp();
    // Listening on `::` (what app.listen(port) does on most hosts) makes Node report IPv4 peers
    // in their IPv4-mapped IPv6 form.
    await app.listen(0, '::');
    const { port } = app.getHttpServer().address() as AddressInfo;
    const { identity, peer } = await whoAmI(`http://127.0.0.1:${port}`);
    expect(peer).toBe('::ffff:127.0.0.1');
    expect(identity).toEqual({ user: '127.0.0.1', group: 'default' });
  });

  it('counts an IPv6 loopback peer as ::1', async () => {
    requireIpv6Loopback();
    app = await createApp();
    await app.listen(0, '::1');
    const { port } = app.getHttpServer().address() as AddressInfo;
    const { identity, peer } = await whoAmI(`http://[::1]:${port}`);
    expect(peer).toBe('::1');
    // Loopback is one host, so it is not widened to `::/64`.
    expect(identity).toEqual({ user: '::1', group: 'default' });
  });
});

// ---------------------------------------------------------------------------------------------
// The pure helper, with hand-made requests for addresses loopback cannot produce.

function fakeRequest(
  remoteAddress: string | undefined,
  headers: ClientAddressRequest['headers'] = {},
  extra: Partial<ClientAddressRequest> = {},
): ClientAddressRequest {
  return { socket: { remoteAddress }, headers, ...extra };
}

describe('resolveClientAddress', () => {
  it('keeps IPv4 addresses whole, private and loopback ones included', () => {
    for (const address of ['1.1.1.1', '127.0.0.1', '172.18.81.1', '10.0.0.1', '192.168.1.20']) {
      expect(resolveClientAddress(fakeRequest(address))).toBe(address);
    }
  });

  it('unmaps IPv4-mapped IPv6', () => {
    expect(resolveClientAddress(fakeRequest('::ffff:203.0.113.7'))).toBe('203.0.113.7');
    expect(resolveClientAddress(fakeRequest('::ffff:10.0.0.1'))).toBe('10.0.0.1');
    expect(resolveClientAddress(fakeRequest('::FFFF:127.0.0.1'))).toBe('127.0.0.1');
  });

  it('groups IPv6 by /64 by default', () => {
    const a = resolveClientAddress(fakeRequest('2001:0db8:0001:0002:aaaa:bbbb:cccc:dddd'));
    const b = resolveClientAddress(fakeRequest('2001:db8:1:2::1'));
    const other = resolveClientAddress(fakeRequest('2001:db8:1:3::1'));
    expect(a).toBe('2001:db8:1:2::/64');
    expect(b).toBe(a);
    expect(other).toBe('2001:db8:1:3::/64');
  });

  it('groups IPv6 by a custom prefix', () => {
    const address = '2001:db8:1:2ff:aaaa:bbbb:cccc:dddd';
    expect(resolveClientAddress(fakeRequest(address), { ipv6Prefix: 56 })).toBe(
      '2001:db8:1:200::/56',
    );
    expect(resolveClientAddress(fakeRequest(address), { ipv6Prefix: 48 })).toBe('2001:db8:1::/48');
    expect(resolveClientAddress(fakeRequest(address), { ipv6Prefix: 0 })).toBe('::/0');
    expect(resolveClientAddress(fakeRequest(address), { ipv6Prefix: 128 })).toBe(
      '2001:db8:1:2ff:aaaa:bbbb:cccc:dddd',
    );
  });

  it('writes IPv6 users in the RFC 5952 form, whatever form the address came in', () => {
    // The longest run of zero groups becomes `::`, never a single zero group.
    expect(resolveClientAddress(fakeRequest('2001:0:0:1:aaaa::1'))).toBe('2001:0:0:1::/64');
    expect(resolveClientAddress(fakeRequest('2001:0:0:1:0:0:0:1'), { ipv6Prefix: 128 })).toBe(
      '2001:0:0:1::1',
    );
    expect(resolveClientAddress(fakeRequest('2001:DB8:0:1:1:1:1:1'), { ipv6Prefix: 128 })).toBe(
      '2001:db8:0:1:1:1:1:1',
    );
    expect(resolveClientAddress(fakeRequest('2001:db8:0:0:1:0:0:1'), { ipv6Prefix: 128 })).toBe(
      '2001:db8::1:0:0:1',
    );
    expect(resolveClientAddress(fakeRequest('::'), { ipv6Prefix: 128 })).toBe('::');
  });

  it('keeps ::1 as ::1 and drops zone ids', () => {
    expect(resolveClientAddress(fakeRequest('::1'))).toBe('::1');
    expect(resolveClientAddress(fakeRequest('fe80::1:2:3:4%eth0'))).toBe('fe80::/64');
    expect(resolveClientAddress(fakeRequest('fe80::1%eth0'), { ipv6Prefix: 128 })).toBe('fe80::1');
  });

  it('prefers a valid framework ip, then falls back to the peer', () => {
    expect(resolveClientAddress(fakeRequest('10.0.0.1', {}, { ip: '203.0.113.7' }))).toBe(
      '203.0.113.7',
    );
    expect(resolveClientAddress(fakeRequest('10.0.0.1', {}, { ip: 'garbage' }))).toBe('10.0.0.1');
    expect(resolveClientAddress(fakeRequest('10.0.0.1', {}, { ip: '' }))).toBe('10.0.0.1');
  });

  it("redoes the walk from Express's documented trust proxy setting when ip is garbage", () => {
    // Like Express's application: a function with a `get` method. Its undocumented compiled
    // `trust proxy fn` says the opposite of the setting, so a test passes only if it is not read.
    const settings = new Map<string, unknown>([['trust proxy fn', () => false]]);
    const app = Object.assign(() => undefined, { get: (name: string) => settings.get(name) });
    const via = (setting: unknown, xff: string) => {
      settings.set('trust proxy', setting);
      return resolveClientAddress(
        fakeRequest('10.0.0.1', { 'x-forwarded-for': xff }, { ip: 'nonsense', app }),
      );
    };
    expect(via(true, 'nonsense, 203.0.113.7')).toBe('203.0.113.7');
    expect(via(1, 'nonsense, 203.0.113.7, 198.51.100.1')).toBe('198.51.100.1');
    expect(via('10.0.0.0/8, 192.168.0.0/16', 'nonsense, 203.0.113.7, 192.168.1.1')).toBe(
      '203.0.113.7',
    );
    expect(via(['10.0.0.0/8'], 'nonsense, 203.0.113.7, 192.168.1.1')).toBe('192.168.1.1');
    expect(via((address: string) => address !== '203.0.113.7', 'nonsense, 203.0.113.7')).toBe(
      '203.0.113.7',
    );
    // A changed setting is compiled again; anything Express would not accept trusts nobody.
    expect(via(['192.168.0.0/16'], 'nonsense, 203.0.113.7')).toBe('10.0.0.1');
    expect(via(0, 'nonsense, 203.0.113.7')).toBe('10.0.0.1');
    expect(via({}, 'nonsense, 203.0.113.7')).toBe('10.0.0.1');
  });

  it('reads nothing but the peer when trusting nobody', () => {
    const req = fakeRequest('10.0.0.1', {
      'x-forwarded-for': '203.0.113.7',
      'x-real-ip': '1.1.1.1',
    });
    expect(resolveClientAddress(req)).toBe('10.0.0.1');
    expect(resolveClientAddress(req, { trustProxy: false })).toBe('10.0.0.1');
  });

  it('walks X-Forwarded-For from the right through trusted CIDRs only', () => {
    const options = { trustProxy: ['10.0.0.0/8', '192.168.0.0/16'] };
    const req = (peer: string, xff: string) => fakeRequest(peer, { 'x-forwarded-for': xff });
    expect(resolveClientAddress(req('10.0.0.2', '203.0.113.7, 192.168.1.1'), options)).toBe(
      '203.0.113.7',
    );
    expect(resolveClientAddress(req('10.0.0.2', '192.168.1.1, 198.51.100.1'), options)).toBe(
      '198.51.100.1',
    );
    // An untrusted peer's header is never read.
    expect(resolveClientAddress(req('203.0.113.50', '198.51.100.1'), options)).toBe('203.0.113.50');
    // Comma-separated strings work as in Express.
    expect(
      resolveClientAddress(req('10.0.0.2', '198.51.100.1'), {
        trustProxy: '10.0.0.0/8, 192.168.0.0/16',
      }),
    ).toBe('198.51.100.1');
  });

  it('trusts a number of hops, everything, or a function', () => {
    const req = fakeRequest('10.0.0.1', {
      'x-forwarded-for': '198.51.100.1, 198.51.100.2, 198.51.100.3',
    });
    expect(resolveClientAddress(req, { trustProxy: 0 })).toBe('10.0.0.1');
    expect(resolveClientAddress(req, { trustProxy: 1 })).toBe('198.51.100.3');
    expect(resolveClientAddress(req, { trustProxy: 2 })).toBe('198.51.100.2');
    expect(resolveClientAddress(req, { trustProxy: true })).toBe('198.51.100.1');
    expect(
      resolveClientAddress(req, {
        trustProxy: (address) => address === '10.0.0.1' || address === '198.51.100.3',
      }),
    ).toBe('198.51.100.2');
    // A trust function that throws on an entry simply does not trust it.
    expect(
      resolveClientAddress(req, {
        trustProxy: () => {
          throw new Error('boom');
        },
      }),
    ).toBe('10.0.0.1');
  });

  it('joins repeated X-Forwarded-For values', () => {
    const req = fakeRequest('127.0.0.1', { 'x-forwarded-for': ['203.0.113.7', '198.51.100.9'] });
    expect(resolveClientAddress(req, { trustProxy: 'loopback' })).toBe('198.51.100.9');
  });

  it('strips ports and brackets that some proxies add', () => {
    const via = (xff: string) =>
      resolveClientAddress(fakeRequest('127.0.0.1', { 'x-forwarded-for': xff }), {
        trustProxy: 'loopback',
      });
    expect(via('203.0.113.7:4711')).toBe('203.0.113.7');
    expect(via('[2001:db8::1]:443')).toBe('2001:db8::/64');
    expect(via('[2001:db8::1]')).toBe('2001:db8::/64');
  });

  it('ignores malformed entries and never walks past them', () => {
    const via = (xff: string) =>
      resolveClientAddress(fakeRequest('127.0.0.1', { 'x-forwarded-for': xff }), {
        trustProxy: 'loopback',
      });
    // `unknown` stops the walk; 203.0.113.7 to its left is never believed.
    expect(via('203.0.113.7, unknown')).toBe('127.0.0.1');
    // ipaddr.js alone would read these as 127.0.0.1 and 192.168.0.1; Node's strict check refuses.
    expect(via('0x7f.1')).toBe('127.0.0.1');
    expect(via('3232235521')).toBe('127.0.0.1');
    expect(via('1.2.3.4/24')).toBe('127.0.0.1');
    expect(via('x'.repeat(5000))).toBe('127.0.0.1');
  });

  it('returns undefined when there is no usable address at all', () => {
    expect(resolveClientAddress(fakeRequest(undefined))).toBeUndefined();
    expect(resolveClientAddress({ headers: {} })).toBeUndefined();
    expect(resolveClientAddress({ headers: {}, socket: null })).toBeUndefined();
    expect(resolveClientAddress(fakeRequest('not-an-ip'))).toBeUndefined();
    expect(
      resolveClientAddress(fakeRequest(undefined, { 'x-forwarded-for': 'garbage' }), {
        trustProxy: 'loopback',
      }),
    ).toBeUndefined();
  });
});

describe('IpAuthResolver and clientIp', () => {
  it('return the address as user and the default group', async () => {
    const req = fakeRequest('::ffff:198.51.100.9') as RateLimitRequest;
    expect(new IpAuthResolver().identify(req)).toEqual({ user: '198.51.100.9', group: 'default' });
    expect(await clientIp()(req, undefined as never)).toEqual({
      user: '198.51.100.9',
      group: 'default',
    });
  });

  it('throw EmptyInformation (a 401) when no address can be used', () => {
    const req = fakeRequest(undefined) as RateLimitRequest;
    expect(() => new IpAuthResolver().identify(req)).toThrow(EmptyInformation);
    expect(() => clientIp()(req, undefined as never)).toThrow(EmptyInformation);
    try {
      new IpAuthResolver().identify(req);
    } catch (error) {
      expect((error as EmptyInformation).getStatus()).toBe(401);
    }
  });

  it('reads options from IP_AUTH_OPTIONS when Nest creates the class', async () => {
    const moduleRef = await Test.createTestingModule({
      providers: [IpAuthResolver, { provide: IP_AUTH_OPTIONS, useValue: { ipv6Prefix: 128 } }],
    }).compile();
    const resolver = moduleRef.get(IpAuthResolver);
    expect(resolver.identify(fakeRequest('2001:db8::1'))).toEqual({
      user: '2001:db8::1',
      group: 'default',
    });
  });

  it.each<[string, unknown, RegExp]>([
    ['ipv6Prefix above 128', { ipv6Prefix: 129 }, /"ipv6Prefix".*0 to 128.*129/],
    ['a negative ipv6Prefix', { ipv6Prefix: -1 }, /"ipv6Prefix"/],
    ['a fractional ipv6Prefix', { ipv6Prefix: 64.5 }, /"ipv6Prefix"/],
    ['a string ipv6Prefix', { ipv6Prefix: '64' }, /"ipv6Prefix".*"64"/],
    ['an invalid trusted address', { trustProxy: 'not-an-ip' }, /"trustProxy".*not-an-ip.*CIDR/],
    ['an empty trusted entry', { trustProxy: 'loopback,' }, /"trustProxy".*empty entry/],
    ['an empty trust list', { trustProxy: [] }, /"trustProxy".*empty entry/],
    ['a non-string trusted entry', { trustProxy: [1] }, /"trustProxy".*must be a boolean/],
    ['an object trustProxy', { trustProxy: {} }, /"trustProxy".*must be a boolean/],
    ['a negative hop count', { trustProxy: -1 }, /"trustProxy".*hops/],
    ['a fractional hop count', { trustProxy: 1.5 }, /"trustProxy".*hops/],
    ['an unknown option', { trust_proxy: true }, /"trust_proxy".*did you mean "trustProxy"/],
    ['options that are not an object', 'loopback', /"options".*must be an object/],
  ])('reject %s with RateLimitConfigError', (_name, options, message) => {
    for (const create of [
      () => new IpAuthResolver(options as IpAuthOptions),
      () => clientIp(options as IpAuthOptions),
      () => resolveClientAddress(fakeRequest('127.0.0.1'), options as IpAuthOptions),
    ]) {
      expectInvalidOption(create, message);
    }
  });
});

describe('the warning about X-Forwarded-For from an untrusted peer', () => {
  const expressApp = (trustProxy: unknown) =>
    Object.assign(() => undefined, {
      get: (name: string) => (name === 'trust proxy' ? trustProxy : undefined),
    });
  const forwarded = { 'x-forwarded-for': '203.0.113.7' };

  it('is logged once per resolver instance', () => {
    const logs = captureLogs();
    const req = fakeRequest('10.0.0.1', forwarded, { ip: '10.0.0.1', app: expressApp(false) });
    const first = new IpAuthResolver();
    const second = new IpAuthResolver();
    for (let i = 0; i < 10; i++) {
      expect(first.identify(req).user).toBe('10.0.0.1');
      expect(second.identify(req).user).toBe('10.0.0.1');
    }
    expect(logs.ours('warn')).toHaveLength(2);
  });

  it('names the adapter outside Express when its ip is the peer despite the header', () => {
    const logs = captureLogs();
    const resolver = new IpAuthResolver();
    // A Fastify request: no Express app, `ip` from the adapter's own trust setting.
    resolver.identify(fakeRequest('10.0.0.1', forwarded, { ip: '10.0.0.1' }));
    resolver.identify(fakeRequest('10.0.0.1', forwarded, { ip: '10.0.0.1' }));
    expect(logs.ours('warn')).toEqual([
      expect.stringMatching(
        /^X-Forwarded-For came from 10\.0\.0\.1, which the HTTP adapter's trust-proxy setting does not trust/,
      ),
    ]);
  });

  it('is not logged when the adapter used the header, or its nearest entry is the peer', () => {
    const logs = captureLogs();
    const resolver = new IpAuthResolver();
    resolver.identify(fakeRequest('10.0.0.1', forwarded, { ip: '203.0.113.7' }));
    resolver.identify(
      fakeRequest('10.0.0.1', { 'x-forwarded-for': '203.0.113.7, 10.0.0.1' }, { ip: '10.0.0.1' }),
    );
    // Express trusts the peer, whose own address is the header's nearest entry.
    resolver.identify(
      fakeRequest(
        '127.0.0.1',
        { 'x-forwarded-for': '127.0.0.1' },
        { ip: '127.0.0.1', app: expressApp('loopback') },
      ),
    );
    expect(logs.ours('warn')).toEqual([]);
  });

  it('is not logged for an empty header, by resolveClientAddress, or with trustProxy false', () => {
    const logs = captureLogs();
    new IpAuthResolver().identify(
      fakeRequest('10.0.0.1', { 'x-forwarded-for': '' }, { app: expressApp(false) }),
    );
    resolveClientAddress(fakeRequest('10.0.0.1', forwarded, { app: expressApp(false) }));
    new IpAuthResolver({ trustProxy: false }).identify(fakeRequest('10.0.0.1', forwarded));
    expect(logs.ours('warn')).toEqual([]);
  });
});
