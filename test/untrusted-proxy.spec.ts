/**
 * X-Forwarded-For from a peer that is not trusted: probably a proxy nobody declared, which makes
 * every client behind it share one limit. The IP resolver warns once, through a real Nest app, on
 * Express (its `trust proxy` setting) and on Fastify (its `trustProxy` option).
 */
import { clientIp, IpAuthResolver, type RateLimitModuleOptions } from 'nestjs-ratelimit';
import { captureLogs, type CapturedLogs } from './support/captured-logs.js';
import {
  ADAPTERS,
  createTestApp,
  type AdapterName,
  type AdapterTrustProxy,
  type TestApp,
} from './support/nest-app.js';

const config: RateLimitModuleOptions['config'] = { '^/api': [{ minute: 100 }] };

/** How the warning names each adapter's setting, and the fix it gives for it. */
const ADAPTER_SETTING: Record<AdapterName, { who: string; fix: string; docs: string }> = {
  express: {
    who: "Express's 'trust proxy' setting",
    fix: "app.set('trust proxy', 'loopback')",
    docs: 'https://expressjs.com/en/guide/behind-proxies.html',
  },
  fastify: {
    who: "Fastify's trustProxy option",
    fix: "new FastifyAdapter({ trustProxy: 'loopback' })",
    docs: 'https://fastify.dev/docs/latest/Reference/Server/#trustproxy',
  },
};

/** Sends `count` limited requests, with X-Forwarded-For when `forwarded` is given. */
async function send(t: TestApp, count: number, forwarded?: string): Promise<void> {
  for (let i = 0; i < count; i++) {
    const req = t.http.get('/api');
    if (forwarded !== undefined) req.set('X-Forwarded-For', forwarded);
    await req.expect(200);
  }
}

/** A pattern for a regular expression: `text` matched literally. */
function literally(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

const FORWARDED = '203.0.113.7, 198.51.100.23';

/** Whether `clientIp`'s one resolver of this process (this file) has warned already. */
let clientIpWarned = false;

describe.each(ADAPTERS)('on %s', (adapter) => {
  const setting = ADAPTER_SETTING[adapter];
  /** The start of the warning when the adapter's own setting turned the peer down. */
  const adapterWarning = new RegExp(
    `^X-Forwarded-For came from 127\\.0\\.0\\.1, which ${literally(setting.who)} does not trust as a proxy`,
  );

  async function withApp(
    setup: {
      authenticate?: RateLimitModuleOptions['authenticate'];
      trustProxy?: AdapterTrustProxy;
    },
    body: (t: TestApp, logs: CapturedLogs) => Promise<void>,
  ): Promise<void> {
    const t = await createTestApp({
      adapter,
      rateLimit: { authenticate: setup.authenticate, config },
      trustProxy: setup.trustProxy,
    });
    try {
      await body(t, captureLogs());
    } finally {
      await t.close();
    }
  }

  describe('X-Forwarded-For from an untrusted peer', () => {
    it("is reported once by the default resolver under the adapter's default (no proxy trusted)", () =>
      withApp({}, async (t, logs) => {
        await send(t, 5, FORWARDED);
        await send(t, 2);
        const warnings = logs.ours('warn');
        expect(warnings).toHaveLength(1);
        const [warning] = warnings;
        expect(warning).toMatch(adapterWarning);
        expect(warning).toMatch(/every client behind it now shares one rate limit/);
        expect(warning).toContain(setting.fix);
        expect(warning).toContain(setting.docs);
        expect(warning).toContain('clientIp({ trustProxy })');
        // The header is the client's or the proxy's text: none of it is logged.
        expect(warning).not.toContain('203.0.113.7');
        expect(warning).not.toContain('198.51.100.23');
      }));

    it('is reported once by authenticate: clientIp', () =>
      withApp({ authenticate: clientIp }, async (t, logs) => {
        // clientIp passed as it is shares one resolver per process (here: this file), used only
        // by this test: it warns once per process, on whichever adapter this test runs first.
        await send(t, 3, FORWARDED);
        expect(logs.ours('warn')).toEqual(
          clientIpWarned ? [] : [expect.stringMatching(adapterWarning)],
        );
        clientIpWarned = true;
      }));

    it('is reported once when the adapter trusts proxies, but not this peer', () =>
      withApp({ trustProxy: '10.0.0.0/8' }, async (t, logs) => {
        await send(t, 5, FORWARDED);
        expect(logs.ours('warn')).toEqual([expect.stringMatching(adapterWarning)]);
      }));

    it('is reported once, naming the option, when trustProxy does not trust the peer', () =>
      withApp(
        { authenticate: new IpAuthResolver({ trustProxy: '10.0.0.0/8' }) },
        async (t, logs) => {
          await send(t, 5, FORWARDED);
          expect(logs.ours('warn')).toEqual([
            expect.stringMatching(
              /^X-Forwarded-For came from 127\.0\.0\.1, which the trustProxy option of this IpAuthResolver \(or clientIp\) does not trust.*add the proxy's address, a CIDR range such as '10\.0\.0\.0\/8', 'loopback', or the number of proxies in front to trustProxy\./,
            ),
          ]);
        },
      ));
  });

  describe('no warning', () => {
    it('without X-Forwarded-For', () =>
      withApp({}, async (t, logs) => {
        await send(t, 5);
        expect(logs.ours('warn')).toEqual([]);
      }));

    it("when the adapter's setting trusts the peer", () =>
      withApp({ trustProxy: 'loopback' }, async (t, logs) => {
        await send(t, 5, FORWARDED);
        expect(logs.ours('warn')).toEqual([]);
      }));

    it('when trustProxy trusts the peer, by address or by hops', async () => {
      for (const trustProxy of ['loopback', 1, true] as const) {
        await withApp({ authenticate: new IpAuthResolver({ trustProxy }) }, async (t, logs) => {
          await send(t, 3, FORWARDED);
          expect(logs.ours('warn')).toEqual([]);
        });
      }
    });

    it('when trustProxy says there is no proxy (false or 0)', async () => {
      for (const trustProxy of [false, 0] as const) {
        await withApp(
          { authenticate: new IpAuthResolver({ trustProxy }), trustProxy: 'loopback' },
          async (t, logs) => {
            await send(t, 3, FORWARDED);
            expect(logs.ours('warn')).toEqual([]);
          },
        );
      }
    });
  });
});
