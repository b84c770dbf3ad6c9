import {
  IpAuthResolver,
  JwtAuthResolver,
  MemoryBackend,
  Rule,
  type RateLimitBackend,
  SessionAuthResolver,
  type RateLimitModuleOptions,
} from 'nestjs-ratelimit';
import { ApiKeyAuthResolver } from './api-keys.js';

/** Signs the sample's demo tokens and verifies them. Set JWT_SECRET outside a demo. */
export const JWT_SECRET = process.env.JWT_SECRET ?? 'sample-secret-change-me';

/**
 * The ordered pattern table. The first pattern that matches the path and has a rule for the
 * caller's group and method decides; patterns match from the start of the path.
 */
export const rules: RateLimitModuleOptions['config'] = new Map([
  // Per-method rules: reading is cheap, writing is not.
  ['^/towns', [new Rule({ second: 2, method: 'GET' }), new Rule({ minute: 3, method: 'POST' })]],
  // Zones: forests and lakes share one pool of 5 requests a minute per user.
  ['^/(forests|lakes)', [new Rule({ minute: 5, zone: 'nature' })]],
  // Brute-force protection: a 6th login attempt in a minute blocks the caller for 2 minutes.
  ['^/auth/login', [new Rule({ minute: 5, blockTime: 120 })]],
  // Admins (JWT group 'admin') are not limited anywhere else; partners get more.
  ['^/', [{ minute: 30 }, { group: 'partner', minute: 300 }, { group: 'admin' }]],
]);

/** Everything the sample passes to RateLimitModule.forRoot(). */
export function rateLimitOptions(
  backend: RateLimitBackend = new MemoryBackend(),
): RateLimitModuleOptions {
  return {
    backend,
    // Tried in order until one identifies the caller: API key, admin JWT, session, client IP.
    authenticate: [
      ApiKeyAuthResolver,
      new JwtAuthResolver({ secret: JWT_SECRET, algorithms: ['HS256'] }),
      new SessionAuthResolver(),
      new IpAuthResolver(),
    ],
    config: rules,
    headers: 'draft-10',
    // A custom rejection that tells the client what tripped and when to come back. Over HTTP it
    // is the 429's JSON body; for GraphQL and WebSocket calls a string is the message of the
    // transport's own error, which already carries the status and retryAfter.
    onBlocked: (info) => {
      const message = info.blocked
        ? `Blocked for ${info.retryAfter}s after going over the limit.`
        : `Over the ${info.unit} limit; retry in ${info.retryAfter}s.`;
      return info.contextType === 'http'
        ? { error: 'rate_limited', message, retryAfter: info.retryAfter }
        : message;
    },
  };
}
