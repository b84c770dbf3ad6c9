import type { IncomingMessage } from 'node:http';
import proxyaddr from 'proxy-addr';
import { describeValue, type FailOption } from '../config-validation.js';
import type {
  ClientAddressRequest,
  IpAuthOptions,
  TrustProxyFunction,
} from './ip.auth-resolver.js';

/**
 * Which proxies may be believed about the client's address: the `trustProxy` option, Express's
 * `trust proxy` setting, and the walk of `X-Forwarded-For` both of them drive.
 */

const TRUST_ALL: TrustProxyFunction = () => true;
const TRUST_NONE: TrustProxyFunction = () => false;

/**
 * Turns the `trustProxy` option into one check, the way Express compiles its own `trust proxy`
 * setting, and rejects what Express would silently misread (an empty entry, a fractional hop
 * count, a non-string list entry).
 */
export function compileTrustOption(
  value: IpAuthOptions['trustProxy'],
  fail: FailOption,
): TrustProxyFunction | undefined {
  if (value === undefined) return undefined;
  if (value === true) return TRUST_ALL;
  if (value === false) return TRUST_NONE;
  if (typeof value === 'number') {
    if (!Number.isInteger(value) || value < 0) {
      fail(
        'trustProxy',
        `as a number of proxy hops must be a whole number, 0 or more, got ${value}.`,
      );
    }
    return (_address, hop) => hop < value;
  }
  if (typeof value === 'function') return guarded(value);
  const entries =
    typeof value === 'string'
      ? value.split(',').map((entry) => entry.trim())
      : Array.isArray(value) && value.every((entry) => typeof entry === 'string')
        ? value.map((entry: string) => entry.trim())
        : fail(
            'trustProxy',
            `must be a boolean, a number of hops, an address/CIDR list or a function, got ${describeValue(value)}.`,
          );
  if (entries.length === 0 || entries.some((entry) => entry === '')) {
    fail(
      'trustProxy',
      `is empty or has an empty entry; list addresses, CIDR ranges or 'loopback', 'linklocal', 'uniquelocal', got ${describeValue(value)}.`,
    );
  }
  try {
    return proxyaddr.compile(entries);
  } catch (error) {
    return fail(
      'trustProxy',
      `${(error as Error).message}; use IP addresses, CIDR ranges (e.g. '10.0.0.0/8') or the names 'loopback', 'linklocal', 'uniquelocal'.`,
    );
  }
}

/**
 * A trust function sees attacker-controlled header entries; if it chokes on one, that entry is
 * simply not trusted, rather than the request failing with a 500.
 */
function guarded(trust: TrustProxyFunction): TrustProxyFunction {
  return (address, hop) => {
    try {
      return trust(address, hop) === true;
    } catch {
      return false;
    }
  };
}

/**
 * The addresses proxy-addr accepts, client first and the socket peer last. The walk stops at the
 * first untrusted entry, and an entry that is not an IP address is never trusted by a compiled
 * list, so nothing to the left of an untrusted or malformed entry is ever looked at. Scanning the
 * result from the client end and skipping an unparsable last entry falls back to the nearest hop
 * we do trust, never to something further left.
 */
export function trustedChain(request: ClientAddressRequest, trust: TrustProxyFunction): string[] {
  // proxy-addr only reads these two fields; a minimal copy keeps odd request objects (no socket,
  // array-valued headers) from crashing it.
  const view = {
    headers: { 'x-forwarded-for': forwardedFor(request) },
    socket: { remoteAddress: request.socket?.remoteAddress },
  } as unknown as IncomingMessage;
  return proxyaddr.all(view, trust).reverse();
}

/** The `X-Forwarded-For` header as one string (repeated headers joined), if the request has one. */
export function forwardedFor(request: ClientAddressRequest): string | undefined {
  // Requests outside HTTP (a WebSocket client, say) may have no headers at all.
  const value = request.headers?.['x-forwarded-for'];
  return Array.isArray(value) ? value.join(',') : value;
}

// ---------------------------------------------------------------------------------------------
// Express's setting

/** True for an Express request whose app has `trust proxy` off (`false`, Express's default). */
export function expressTrustsNoProxy(request: ClientAddressRequest): boolean {
  const app = expressApp(request);
  return app !== undefined && app.get('trust proxy') === false;
}

/** Each Express app's `trust proxy` setting, compiled once for as long as it keeps that value. */
const expressTrustCache = new WeakMap<object, { setting: unknown; trust: TrustProxyFunction }>();

/**
 * The request's Express app's `trust proxy` setting as a check, or `undefined` outside Express.
 * Express documents the setting (`app.get('trust proxy')`), not the function it compiles from it,
 * so the setting is compiled here, with the same rules and the same proxy-addr.
 */
export function expressTrust(request: ClientAddressRequest): TrustProxyFunction | undefined {
  const app = expressApp(request);
  if (app === undefined) return undefined;
  const setting = app.get('trust proxy');
  const cached = expressTrustCache.get(app);
  if (cached !== undefined && cached.setting === setting) return cached.trust;
  const trust = compileExpressSetting(setting);
  expressTrustCache.set(app, { setting, trust });
  return trust;
}

/**
 * As Express reads its `trust proxy` values (https://expressjs.com/en/guide/behind-proxies.html):
 * `true`, a number of hops, a comma-separated string or an array of addresses, CIDR ranges and
 * names, or a function. Express rejects a bad list when it is set; anything still unreadable
 * trusts nobody.
 */
function compileExpressSetting(setting: unknown): TrustProxyFunction {
  if (typeof setting === 'function') return guarded(setting as TrustProxyFunction);
  if (setting === true) return TRUST_ALL;
  if (typeof setting === 'number') return (_address, hop) => hop < setting;
  const list =
    typeof setting === 'string' ? setting.split(',').map((entry) => entry.trim()) : setting;
  if (!list) return TRUST_NONE;
  try {
    return proxyaddr.compile(list as string[]);
  } catch {
    return TRUST_NONE;
  }
}

/** The request's Express application (anything with a settings getter), if it has one. */
function expressApp(request: ClientAddressRequest): ExpressSettings | undefined {
  // An Express application is itself a function (the request listener), not a plain object.
  const app = request.app as { get?: unknown } | null | undefined;
  if (app === null || (typeof app !== 'object' && typeof app !== 'function')) return undefined;
  return typeof app.get === 'function' ? (app as ExpressSettings) : undefined;
}

/** `app.get(name)` with one argument reads an Express setting. */
interface ExpressSettings {
  get(name: string): unknown;
}
