/** How the application's router treats the spelling of a path. */
export interface PathRouting {
  /**
   * Whether `/Towns` and `/towns` are different routes (Express: `case sensitive routing`, off by
   * default; Fastify: `caseSensitive`, on by default).
   */
  readonly caseSensitive: boolean;
  /**
   * Whether `/towns/` and `/towns` are different routes (Express: `strict routing`, off by
   * default; Fastify: not `ignoreTrailingSlash`, so on by default).
   */
  readonly strict: boolean;
  /** The global prefix (`app.setGlobalPrefix`) as a canonical path such as `/api`, or `''`. */
  readonly prefix: string;
}

/** Express's defaults: case-insensitive, a trailing slash ignored, no global prefix. */
export const DEFAULT_ROUTING: PathRouting = Object.freeze({
  caseSensitive: false,
  strict: false,
  prefix: '',
});

/**
 * Longest path, in characters, that patterns are matched against; a longer one is matched, and
 * counted, by its first this many characters. Every pattern is checked for catastrophic
 * backtracking at start-up, but a pattern marked trusted is not, and the matching cost of any
 * regular expression grows with its input: the bound keeps one request's matching cheap whatever
 * the pattern. Node's HTTP parser already refuses request lines of more than about 16 KB.
 */
export const MAX_MATCHED_PATH_LENGTH = 2_048;

/**
 * A request's path in the two forms patterns are matched against. `canonical` is what every
 * spelling that reaches one handler has in common, and keys path counters; `routed` differs from
 * it only for a path with dot segments (`/a/../b`), which the router does not resolve: a route
 * with a parameter can receive `/forests/..` as `id = '..'`, so a pattern for `/forests` must match
 * that path too, although its canonical form is `/`.
 */
export interface RequestPathForms {
  readonly canonical: string;
  readonly routed: string;
}

/**
 * Works out the paths patterns are matched against, the way the application's router reads a
 * path (SPEC 4): every spelling that reaches the same handler gives one canonical path.
 *
 * From the request target, without query string or fragment: percent-escapes decoded (a malformed
 * one is kept as it came, never a 500); `;` parameters dropped from every segment
 * (`/towns;jsessionid=1`); repeated slashes collapsed; letters lower-cased when the router ignores
 * case; dot segments resolved (`/a/./b/../c` is `/a/c`, for the canonical form only); one
 * trailing slash dropped when the router ignores it; the global prefix dropped (patterns are
 * written without it, as Nest's own `forRoutes()` paths are); at most
 * {@link MAX_MATCHED_PATH_LENGTH} characters. A path that needs none of this (the usual case) is
 * passed through after one regular-expression test.
 */
export class RequestPaths {
  /** Characters that make a path need more than the fast path. */
  private readonly needsWork: RegExp;
  /** Reused for every request: the forms are read at once, never kept. */
  private readonly forms = { canonical: '', routed: '' };

  constructor(readonly routing: PathRouting) {
    this.needsWork = routing.caseSensitive ? /[%;]|\/\// : /[%;A-Z\u0080-\uffff]|\/\//;
  }

  /** The forms of a request target such as `/towns/1?page=2`; the object is reused by the next call. */
  ofTarget(target: string): RequestPathForms {
    let path = target;
    const query = queryStart(path);
    if (query !== -1) path = path.slice(0, query);
    if (path.charCodeAt(0) !== 47 /* '/' */) path = stripOrigin(path) || '/';
    if (this.needsWork.test(path)) path = this.normalise(path);
    const routed = this.finish(path);
    this.forms.routed = routed;
    this.forms.canonical = hasDotSegment(path) ? this.finish(removeDotSegments(path)) : routed;
    return this.forms;
  }

  /** Decoding, `;` parameters, repeated slashes and letter case. */
  private normalise(path: string): string {
    let result = path.includes('%') ? percentDecode(path) : path;
    if (result.includes(';')) result = result.replace(/;[^/]*/g, '');
    if (result.includes('//')) result = result.replace(/\/{2,}/g, '/');
    if (!this.routing.caseSensitive) result = result.toLowerCase();
    return result === '' ? '/' : result;
  }

  /** Trailing slash, global prefix, length bound. */
  private finish(path: string): string {
    let result = path;
    if (!this.routing.strict && result.length > 1 && result.endsWith('/')) {
      result = result.slice(0, -1);
    }
    const { prefix } = this.routing;
    if (prefix !== '' && result.startsWith(prefix)) {
      if (result.length === prefix.length) result = '/';
      else if (result.charCodeAt(prefix.length) === 47 /* '/' */) {
        result = result.slice(prefix.length);
      }
    }
    return result.length > MAX_MATCHED_PATH_LENGTH
      ? result.slice(0, MAX_MATCHED_PATH_LENGTH)
      : result;
  }
}

/**
 * The global prefix as {@link RequestPaths} compares it: what `setGlobalPrefix('api/')` makes of
 * every route, `/api`; `''` for none.
 */
export function canonicalPrefix(prefix: string, caseSensitive: boolean): string {
  const trimmed = prefix.replace(/^\/+|\/+$/g, '');
  if (trimmed === '') return '';
  return `/${caseSensitive ? trimmed : trimmed.toLowerCase()}`;
}

/** Decodes every percent-escape that is valid UTF-8; a malformed one stays as it came. */
function percentDecode(path: string): string {
  try {
    return decodeURIComponent(path);
  } catch {
    // Decode each run of escapes on its own, and in a run that is not valid UTF-8 at least the
    // ASCII escapes, so that no malformed escape keeps the rest of the path from being decoded.
    return path.replace(/(?:%[0-9a-fA-F]{2})+/g, (run) => {
      try {
        return decodeURIComponent(run);
      } catch {
        return run.replace(/%[0-7][0-9a-fA-F]/g, (escape) => decodeURIComponent(escape));
      }
    });
  }
}

/**
 * Where the query string (or a fragment) of a target starts, -1 when it has neither: two
 * `indexOf` scans, measured cheaper than one regular-expression search on every request.
 */
function queryStart(target: string): number {
  const query = target.indexOf('?');
  const fragment = target.indexOf('#');
  if (fragment === -1) return query;
  return query === -1 || fragment < query ? fragment : query;
}

/** True when `path` has a `.` or `..` segment. */
function hasDotSegment(path: string): boolean {
  return path.includes('/.') && /\/\.\.?(?:\/|$)/.test(path);
}

/** RFC 3986's remove_dot_segments for an absolute path: `/a/./b/../c` is `/a/c`. */
function removeDotSegments(path: string): string {
  const segments = path.split('/');
  const kept: string[] = [];
  for (let i = 1; i < segments.length; i++) {
    const segment = segments[i]!;
    const last = i === segments.length - 1;
    if (segment === '.' || segment === '..') {
      if (segment === '..') kept.pop();
      if (last) kept.push(''); // `/a/b/..` is `/a/`, a directory
    } else {
      kept.push(segment);
    }
  }
  return `/${kept.join('/')}`;
}

/** An absolute-form request target (`GET http://host/path`) keeps only its path. */
function stripOrigin(target: string): string {
  const scheme = /^[a-z][a-z0-9+.-]*:\/\/[^/]*/i.exec(target);
  if (!scheme) return target;
  return target.slice(scheme[0].length) || '/';
}
