import type { RateLimitRequest } from '../auth/identity.js';

/**
 * The path patterns are matched against: the request path as received (before any router
 * rewrote it), without query string or fragment, percent-decoded like the original's ASGI path. A
 * path with a malformed escape is used as it came rather than failing the request.
 */
export function requestPath(request: RateLimitRequest): string {
  let path = request.originalUrl ?? request.url ?? '/';
  const query = path.search(/[?#]/);
  if (query !== -1) path = path.slice(0, query);
  if (path.charCodeAt(0) !== 47 /* '/' */) path = stripOrigin(path);
  if (!path.includes('%')) return path;
  try {
    return decodeURIComponent(path);
  } catch {
    return path;
  }
}

/** An absolute-form request target (`GET http://host/path`) keeps only its path. */
function stripOrigin(target: string): string {
  const scheme = /^[a-z][a-z0-9+.-]*:\/\/[^/]*/i.exec(target);
  if (!scheme) return target;
  return target.slice(scheme[0].length) || '/';
}
