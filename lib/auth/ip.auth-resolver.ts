import { Inject, Injectable, Optional, type ExecutionContext } from '@nestjs/common';
import ipaddr from 'ipaddr.js';
import { isIP, isIPv4 } from 'node:net';
import {
  describeValue,
  optionFailure,
  rejectUnknownKeys,
  type FailOption,
} from '../config-validation.js';
import { isAuthCall } from './auth-call.js';
import { AuthResolver } from './auth-resolver.js';
import { EmptyInformation } from './empty-information.js';
import { callerFor } from './caller.js';
import type { AuthFunction, Identity } from './identity.js';
import {
  compileTrustOption,
  expressTrust,
  expressTrustsNoProxy,
  forwardedFor,
  trustedChain,
} from './trusted-proxies.js';
import {
  warnUntrustedProxy,
  type TrustSource,
  type UntrustedForwardHook,
} from './untrusted-proxy-warning.js';

/**
 * Decides whether the proxy at `address`, `hop` steps away from this server (0 = the socket peer),
 * may be believed about who sent it the request. It receives the raw `X-Forwarded-For` entry, which
 * may not be an IP address at all; an exception counts as "not trusted".
 */
export type TrustProxyFunction = (address: string, hop: number) => boolean;

/** Options of {@link IpAuthResolver} and {@link clientIp}. */
export interface IpAuthOptions {
  /**
   * Which peers may tell us the client's address through `X-Forwarded-For`. The header is walked
   * from the right (the entry our own peer added) and the walk stops at the first address that is
   * not trusted: that address is the client. Forwarded headers from an untrusted peer are never
   * read. `X-Real-IP` is never read either: a proxy that only sets `X-Real-IP` must be told to set
   * `X-Forwarded-For` (nginx: `proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;`).
   *
   * - unset (the default): follow the HTTP adapter's own setting through the framework's
   *   `request.ip`: on Express it obeys `app.set('trust proxy', ...)`, on Fastify the
   *   `trustProxy` option of `new FastifyAdapter({ trustProxy })` (both off unless the app opted
   *   in);
   * - `false`: trust nobody, always the socket peer (ignores the adapter's setting);
   * - `true`: trust every hop, i.e. the left-most entry, which the client can forge; only safe
   *   when every request is known to come through a proxy that overwrites the header;
   * - a number `n`: trust the `n` nearest hops (`1` = one proxy in front of the app);
   * - a string (comma-separated) or an array of addresses, CIDR ranges or the names `'loopback'`,
   *   `'linklocal'`, `'uniquelocal'`, as Express's `trust proxy` accepts;
   * - a {@link TrustProxyFunction}.
   *
   * @default undefined (the adapter's setting: Express's `trust proxy`, Fastify's `trustProxy`)
   * @example
   * clientIp({ trustProxy: 'loopback' })                  // nginx on the same host
   * clientIp({ trustProxy: ['10.0.0.0/8', '172.16.0.0/12'] }) // load balancers in the VPC
   * clientIp({ trustProxy: 1 })                            // exactly one proxy in front
   */
  trustProxy?: boolean | number | string | readonly string[] | TrustProxyFunction;
  /**
   * IPv6 clients are counted per network of this prefix length, because one end site usually gets
   * a whole /64 (or more) and can pick a fresh address from it for every request. The user is then
   * the network address plus the prefix, e.g. `2001:db8:1:2::/64`. `128` counts every address on
   * its own (the user is the plain address). IPv4 addresses are always counted one by one.
   * @default 64
   */
  ipv6Prefix?: number;
}

/**
 * The parts of a request the IP resolver reads: Node's `IncomingMessage`, Express's and Fastify's
 * requests all fit, and so does a plain object in a test.
 */
export interface ClientAddressRequest {
  /**
   * The address the framework computed from its own setting (Express's `trust proxy`, Fastify's
   * `trustProxy`).
   */
  readonly ip?: string;
  /** The TCP connection; `remoteAddress` is the peer, which may be a proxy. */
  readonly socket?: { readonly remoteAddress?: string } | null;
  /** The request headers, lower-case names. */
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  /**
   * Express's application: its `trust proxy` setting (`app.get('trust proxy')`) says whether `ip`
   * can be anything but the peer, and is used to redo Express's walk when `ip` is not an address.
   */
  readonly app?: unknown;
}

/**
 * DI token for {@link IpAuthOptions}: provide it to configure an `IpAuthResolver` that Nest
 * creates. Without a provider, the resolver uses the defaults.
 * @example
 * providers: [{ provide: IP_AUTH_OPTIONS, useValue: { trustProxy: 'loopback' } }]
 */
export const IP_AUTH_OPTIONS = 'nestjs-ratelimit:IP_AUTH_OPTIONS';

const DEFAULT_IPV6_PREFIX = 64;
const OPTION_NAMES: ReadonlySet<string> = new Set(['trustProxy', 'ipv6Prefix']);
const OPTION_HINTS: Readonly<Record<string, string>> = {
  trust_proxy: 'trustProxy',
  trustproxy: 'trustProxy',
  trustProxies: 'trustProxy',
  trustedProxies: 'trustProxy',
  ipv6_prefix: 'ipv6Prefix',
  ipv6PrefixLength: 'ipv6Prefix',
  prefix: 'ipv6Prefix',
};

/**
 * Identifies the caller by client IP address; the group is always `'default'`. It is the module's
 * default resolver.
 *
 * The address is the socket peer unless the peer is a trusted proxy (see
 * {@link IpAuthOptions.trustProxy}). IPv4-mapped IPv6 addresses (`::ffff:1.2.3.4`, as Node reports
 * IPv4 peers on a dual-stack socket) become plain IPv4; other IPv6 addresses are grouped by
 * {@link IpAuthOptions.ipv6Prefix}. Loopback and private addresses are ordinary users, so local
 * development works. A malformed forwarded entry is ignored (the nearest trusted hop is used
 * instead); only a request with no usable address at all throws {@link EmptyInformation}.
 *
 * @example
 * RateLimitModule.forRoot({ authenticate: IpAuthResolver, config })
 * RateLimitModule.forRoot({ authenticate: new IpAuthResolver({ trustProxy: 'loopback' }), config })
 */
@Injectable()
export class IpAuthResolver extends AuthResolver {
  /** Compiled once here, so a request only runs the check, never parses the option again. */
  private readonly trust: TrustProxyFunction | undefined;
  private readonly ipv6Prefix: number;
  /**
   * Set until the one warning about `X-Forwarded-For` from an untrusted peer is logged, then
   * cleared, so that after it the check costs nothing. Never set when `trustProxy` says there is
   * no proxy (`false`, `0`): then the header can only be a client's claim.
   */
  private onUntrustedForward: UntrustedForwardHook | undefined;

  /**
   * @param options how to find and group the client address; Nest injects {@link IP_AUTH_OPTIONS}
   *   when it is provided
   * @throws RateLimitConfigError when an option is invalid
   */
  constructor(@Optional() @Inject(IP_AUTH_OPTIONS) options: IpAuthOptions = {}) {
    super();
    const parsed = parseIpAuthOptions(options);
    this.trust = parsed.trust;
    this.ipv6Prefix = parsed.ipv6Prefix;
    const noProxy = options?.trustProxy === false || options?.trustProxy === 0;
    this.onUntrustedForward = noProxy
      ? undefined
      : (peer, source) => {
          this.onUntrustedForward = undefined;
          warnUntrustedProxy(peer, source);
        };
  }

  /**
   * Identifies the caller of the current call: the HTTP request's client (of a GraphQL call too)
   * or the WebSocket client's.
   * @throws EmptyInformation for a microservice message, which has no client address
   */
  resolve(context: ExecutionContext): Identity {
    return this.identify(callerFor(context, 'IpAuthResolver'));
  }

  /**
   * Identifies the caller of `request` (what {@link clientIp} calls).
   * @throws EmptyInformation when the request carries no usable address
   */
  identify(request: ClientAddressRequest): Identity {
    const user = findClientUser(request, this.trust, this.ipv6Prefix, this.onUntrustedForward);
    if (user === undefined) {
      throw new EmptyInformation('The client address is unknown');
    }
    return { user, group: 'default' };
  }
}

/** The resolver `clientIp` uses when it is passed as it is, created on first use. */
let defaultResolver: IpAuthResolver | undefined;

/**
 * The IP resolver used as an auth function itself, as asgi-ratelimit's users write `client_ip`:
 * `authenticate: clientIp`, `authenticate: [headerAuth, clientIp]`, or called in your own
 * function, `(request, context) => ... ?? clientIp(request, context)`. It uses the default options
 * (the HTTP adapter's trust-proxy setting, IPv6 grouped per /64); for others, call
 * `clientIp(options)` once.
 *
 * @example
 * RateLimitModule.forRoot({ authenticate: clientIp, config })
 * @throws EmptyInformation when the request carries no usable address
 */
export function clientIp(request: ClientAddressRequest, context?: ExecutionContext): Identity;
/**
 * Creates the IP resolver as an auth function, `(request) => ({ user: address, group: 'default' })`.
 * Options are validated (and the trust list compiled) once, here.
 *
 * @example
 * RateLimitModule.forRoot({ authenticate: clientIp({ trustProxy: 1, ipv6Prefix: 56 }), config })
 * @throws RateLimitConfigError when an option is invalid
 */
export function clientIp(options?: IpAuthOptions): AuthFunction;
export function clientIp(
  requestOrOptions?: ClientAddressRequest | IpAuthOptions,
  context?: ExecutionContext,
): Identity | AuthFunction {
  if (isAuthCall(requestOrOptions, context)) {
    defaultResolver ??= new IpAuthResolver();
    return context === undefined
      ? defaultResolver.identify(requestOrOptions as ClientAddressRequest)
      : defaultResolver.resolve(context);
  }
  const resolver = new IpAuthResolver(requestOrOptions as IpAuthOptions | undefined);
  return (request, callContext) =>
    callContext === undefined ? resolver.identify(request) : resolver.resolve(callContext);
}

/**
 * The rate-limit user the IP resolver derives from `request`: the client address, normalised
 * (IPv4-mapped IPv6 unmapped, IPv6 grouped by prefix), or `undefined` when the request has no
 * usable address. Useful in your own resolvers, e.g. to fall back to the IP for anonymous callers.
 * It validates `options` on every call; for repeated use create an {@link IpAuthResolver} once.
 *
 * @example
 * resolveClientAddress({ socket: { remoteAddress: '::ffff:203.0.113.7' }, headers: {} }) // '203.0.113.7'
 * @throws RateLimitConfigError when an option is invalid
 */
export function resolveClientAddress(
  request: ClientAddressRequest,
  options: IpAuthOptions = {},
): string | undefined {
  const { trust, ipv6Prefix } = parseIpAuthOptions(options);
  return findClientUser(request, trust, ipv6Prefix);
}

// ---------------------------------------------------------------------------------------------
// Options

function parseIpAuthOptions(options: IpAuthOptions | null | undefined): {
  trust: TrustProxyFunction | undefined;
  ipv6Prefix: number;
} {
  // `null` is what a DI provider with `useValue: null` gives; treat it like "no options".
  const input: unknown = options ?? {};
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    fail(
      'options',
      `must be an object such as { trustProxy: 'loopback' }, got ${describeValue(input)}.`,
    );
  }
  rejectUnknownKeys(input, OPTION_NAMES, OPTION_HINTS, 'an IpAuthResolver option', fail);
  const { trustProxy, ipv6Prefix = DEFAULT_IPV6_PREFIX } = input as IpAuthOptions;
  if (!Number.isInteger(ipv6Prefix) || ipv6Prefix < 0 || ipv6Prefix > 128) {
    fail(
      'ipv6Prefix',
      `must be a whole number from 0 to 128 (64 counts each IPv6 end site once, 128 every address), got ${describeValue(ipv6Prefix)}.`,
    );
  }
  return { trust: compileTrustOption(trustProxy, fail), ipv6Prefix };
}

const fail: FailOption = optionFailure('IpAuthResolver');

// ---------------------------------------------------------------------------------------------
// Per request

/**
 * Candidate addresses, best first; the first one that parses wins. With an explicit trust check
 * the candidates are the trusted walk from the client back to the peer. Otherwise: the peer
 * alone when Express trusts no proxy; else the framework's `ip`, then (Express only) its own walk,
 * then the peer. `onUntrusted` hears of an `X-Forwarded-For` that a peer nobody trusts sent.
 */
function findClientUser(
  request: ClientAddressRequest,
  trust: TrustProxyFunction | undefined,
  ipv6Prefix: number,
  onUntrusted?: UntrustedForwardHook,
): string | undefined {
  if (trust !== undefined) {
    const chain = trustedChain(request, trust);
    // The peer alone: either it sent no X-Forwarded-For, or it is not trusted.
    if (onUntrusted !== undefined && chain.length === 1) {
      checkPeer(request, trust, 'option', onUntrusted);
    }
    return firstUsable(chain, ipv6Prefix);
  }
  // Express with `trust proxy` off (its default): `request.ip` is the socket peer. Reading the
  // peer directly skips proxy-addr, which parses `X-Forwarded-For` into arrays on every request.
  if (expressTrustsNoProxy(request)) {
    const peer = request.socket?.remoteAddress;
    if (onUntrusted !== undefined && peer !== undefined && forwardedFor(request)) {
      onUntrusted(peer, 'express');
    }
    return normalise(peer, ipv6Prefix);
  }
  const ip = request.ip;
  const fromFramework = normalise(ip, ipv6Prefix);
  if (fromFramework !== undefined) {
    // The framework answered with the peer: perhaps it ignored an X-Forwarded-For. The header is
    // looked at first: the peer is a getter into the socket, and most requests have no header.
    if (
      onUntrusted !== undefined &&
      forwardedFor(request) &&
      ip === request.socket?.remoteAddress
    ) {
      checkFramework(request, onUntrusted);
    }
    return fromFramework;
  }
  // `request.ip` is missing or not an address. With `trust proxy` on, Express returns whatever a
  // trusted hop wrote, garbage included; redo its walk and keep the nearest usable entry instead.
  const expressTrustCheck = expressTrust(request);
  if (expressTrustCheck !== undefined) {
    return firstUsable(trustedChain(request, expressTrustCheck), ipv6Prefix);
  }
  return normalise(request.socket?.remoteAddress, ipv6Prefix);
}

/** Tells `onUntrusted` when the request carries X-Forwarded-For and `trust` refuses its peer. */
function checkPeer(
  request: ClientAddressRequest,
  trust: TrustProxyFunction,
  source: TrustSource,
  onUntrusted: UntrustedForwardHook,
): void {
  const peer = request.socket?.remoteAddress;
  if (peer !== undefined && forwardedFor(request) && !trust(peer, 0)) onUntrusted(peer, source);
}

/**
 * The framework's `ip` is the peer. On Express its setting says whether it trusts the peer; any
 * other adapter (Fastify) ignored the header when its nearest entry is not the peer itself.
 * Fastify's request is told by its documented `raw` (Node's request), so that the warning names
 * Fastify's `trustProxy` option.
 */
function checkFramework(request: ClientAddressRequest, onUntrusted: UntrustedForwardHook): void {
  const header = forwardedFor(request);
  if (!header) return;
  const trust = expressTrust(request);
  if (trust !== undefined) {
    checkPeer(request, trust, 'express', onUntrusted);
    return;
  }
  const peer = request.socket?.remoteAddress;
  const nearest = header.slice(header.lastIndexOf(',') + 1).trim();
  if (peer === undefined || nearest === peer) return;
  const { raw } = request as { raw?: unknown };
  onUntrusted(peer, typeof raw === 'object' && raw !== null ? 'fastify' : 'adapter');
}

function firstUsable(candidates: readonly unknown[], ipv6Prefix: number): string | undefined {
  for (const candidate of candidates) {
    const user = normalise(candidate, ipv6Prefix);
    if (user !== undefined) return user;
  }
  return undefined;
}

/** How Node reports an IPv4 peer on a dual-stack socket. */
const IPV4_MAPPED_PREFIX = '::ffff:';
/** `1.2.3.4:80` and `[2001:db8::1]:80` (some load balancers add the port) and `[2001:db8::1]`. */
const IPV4_WITH_PORT = /^(\d{1,3}(?:\.\d{1,3}){3}):\d{1,5}$/;
const BRACKETED_IPV6 = /^\[([^\]]{2,100})\](?::\d{1,5})?$/;

/**
 * The rate-limit user for one address, or `undefined` if it is not an IP address. Node's strict
 * parser decides validity (ipaddr.js alone would also accept forms such as `0x7f.1` or a bare
 * number); ipaddr.js then parses the groups, which are unmapped or masked here.
 */
function normalise(value: unknown, ipv6Prefix: number): string | undefined {
  if (typeof value !== 'string') return undefined;
  // Fast path for the usual case, on every request: Node's strict check only accepts canonical
  // dotted quads (no leading zeros, no hex), which are already the user key as they are, plain or
  // IPv4-mapped; no parsing or allocation needed.
  if (isIPv4(value)) return value;
  if (value.startsWith(IPV4_MAPPED_PREFIX) && isIPv4(value.slice(IPV4_MAPPED_PREFIX.length))) {
    return value.slice(IPV4_MAPPED_PREFIX.length);
  }
  let text = value.trim();
  const match = IPV4_WITH_PORT.exec(text) ?? BRACKETED_IPV6.exec(text);
  if (match) text = match[1];
  if (isIP(text) === 0) return undefined;
  let address: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    address = ipaddr.parse(text);
  } catch {
    return undefined;
  }
  if (address.kind() === 'ipv6' && (address as ipaddr.IPv6).isIPv4MappedAddress()) {
    address = (address as ipaddr.IPv6).toIPv4Address();
  }
  if (address.kind() === 'ipv4') return address.toString();
  // Formatting the groups ourselves drops any zone id (`%eth0`): it names our interface, not the
  // client.
  const parts = (address as ipaddr.IPv6).parts.slice();
  const range = (address as ipaddr.IPv6).range();
  // Loopback and the unspecified address are single hosts, so `::1` stays `::1`, not `::/64`.
  if (ipv6Prefix === 128 || range === 'loopback' || range === 'unspecified') {
    return formatIpv6(parts);
  }
  for (let bit = ipv6Prefix; bit < 128; bit++) {
    parts[bit >> 4] &= ~(0x8000 >> (bit & 15));
  }
  return `${formatIpv6(parts)}/${ipv6Prefix}`;
}

/**
 * The RFC 5952 text of eight 16-bit groups (lower-case hex, no leading zeros, the longest run of
 * two or more zero groups, the first of equal runs, written `::`), the form Node reports peers in.
 * ipaddr.js 1.x's `toString()` shortens the first run instead, even a single zero group; Node's
 * own formatter (`net.SocketAddress`) costs about 2 us per call, as much as the parse itself.
 */
function formatIpv6(parts: readonly number[]): string {
  let runStart = -1;
  let runLength = 1;
  for (let i = 0; i < 8;) {
    if (parts[i] !== 0) {
      i++;
      continue;
    }
    let end = i + 1;
    while (end < 8 && parts[end] === 0) end++;
    if (end - i > runLength) {
      runStart = i;
      runLength = end - i;
    }
    i = end;
  }
  const hex = (from: number, to: number): string =>
    parts
      .slice(from, to)
      .map((part) => part.toString(16))
      .join(':');
  if (runStart < 0) return hex(0, 8);
  return `${hex(0, runStart)}::${hex(runStart + runLength, 8)}`;
}
