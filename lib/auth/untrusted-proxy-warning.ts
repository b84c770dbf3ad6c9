import { Logger } from '@nestjs/common';

/** Whose trust-proxy setting turned the peer down. */
export type TrustSource = 'option' | 'express' | 'fastify' | 'adapter';

/** Told, once, that `X-Forwarded-For` came from a peer that `source` does not trust. */
export type UntrustedForwardHook = (peer: string, source: TrustSource) => void;

const logger = new Logger('RateLimit');

const ADAPTER_FIX =
  "app.set('trust proxy', 'loopback') on Express when the proxy runs on this host, or its " +
  'address, a CIDR range or the number of proxies in front ' +
  '(https://expressjs.com/en/guide/behind-proxies.html); new FastifyAdapter({ trustProxy: ... }) ' +
  'on Fastify; or, for the rate limiter alone, clientIp({ trustProxy }) or ' +
  'new IpAuthResolver({ trustProxy })';

const FASTIFY_FIX =
  "new FastifyAdapter({ trustProxy: 'loopback' }) when the proxy runs on this host, or its " +
  'address, a CIDR range or the number of proxies in front ' +
  '(https://fastify.dev/docs/latest/Reference/Server/#trustproxy); or, for the rate limiter ' +
  'alone, clientIp({ trustProxy }) or new IpAuthResolver({ trustProxy })';

const WHO: Record<TrustSource, { who: string; fix: string }> = {
  option: {
    who: 'the trustProxy option of this IpAuthResolver (or clientIp)',
    fix: "add the proxy's address, a CIDR range such as '10.0.0.0/8', 'loopback', or the number of proxies in front to trustProxy",
  },
  express: { who: "Express's 'trust proxy' setting", fix: ADAPTER_FIX },
  fastify: { who: "Fastify's trustProxy option", fix: FASTIFY_FIX },
  adapter: { who: "the HTTP adapter's trust-proxy setting", fix: ADAPTER_FIX },
};

/**
 * Warns that the app is probably behind a proxy it does not trust, as express-rate-limit's
 * ERR_ERL_UNEXPECTED_X_FORWARDED_FOR does. Only the peer's address is logged, never the header,
 * which is whatever the client or the proxy chose to write.
 */
export function warnUntrustedProxy(peer: string, source: TrustSource): void {
  const { who, fix } = WHO[source];
  logger.warn(
    `X-Forwarded-For came from ${peer}, which ${who} does not trust as a proxy, so the header is ` +
      `ignored and ${peer} is taken as the client. If the app runs behind a proxy or load ` +
      'balancer, every client behind it now shares one rate limit; declare the proxy as trusted: ' +
      `${fix}. If clients reach the app directly, the header is only their claim and ignoring it ` +
      'is right. Logged once.',
  );
}
