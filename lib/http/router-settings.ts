import type { ApplicationConfig, HttpAdapterHost } from '@nestjs/core';
import type { PatternRules } from '../rules/rule-table.js';
import { canonicalPrefix, DEFAULT_ROUTING, type PathRouting } from './request-path.js';

/** Express's documented `app.get(name)`, which reads one of the application's settings. */
interface ExpressSettings {
  get(name: string): unknown;
}

/** Fastify's router options, as its documented `initialConfig` exposes them. */
interface FastifyRouterOptions {
  readonly caseSensitive?: boolean;
  readonly ignoreTrailingSlash?: boolean;
}

/**
 * Fastify's documented `fastify.initialConfig`: the options the instance was created with. Router
 * options live under `routerOptions` (Fastify 5, and what Nest's FastifyAdapter passes); the
 * top-level spellings are Fastify 4's, deprecated in 5 but still read.
 */
interface FastifyInitialConfig extends FastifyRouterOptions {
  readonly routerOptions?: FastifyRouterOptions;
}

/**
 * How the application's router treats the spelling of a path, read once when the module starts
 * (after `main.ts` has called `setGlobalPrefix` and `app.set(...)`, and after Nest has registered
 * the routes):
 * - Express: its documented `case sensitive routing` and `strict routing` settings (off by
 *   default: `/Towns` and `/towns/` reach the `/towns` handler);
 * - Fastify: its router options `caseSensitive` (on by default: `/Towns` is another route) and
 *   `ignoreTrailingSlash` (off by default: `/towns/` is another route), from its documented
 *   `initialConfig`;
 * - any other adapter, or none (a microservice): Express's defaults;
 * - the global prefix from Nest's `ApplicationConfig`.
 *
 * Repeated slashes and `;` parameters are dropped from the canonical path whatever the router
 * says (Fastify's `ignoreDuplicateSlashes` and `useSemicolonDelimiter`): a catch-all route still
 * receives `//towns`, and counting it with `/towns` can only make a limit stricter.
 */
export function readRouterSettings(
  adapterHost: HttpAdapterHost | undefined,
  config: ApplicationConfig | undefined,
): PathRouting {
  // `null` in an application context without HTTP (createApplicationContext, a microservice).
  const adapter = adapterHost?.httpAdapter ?? undefined;
  let { caseSensitive, strict } = DEFAULT_ROUTING;
  const type = adapter?.getType();
  if (type === 'express') {
    const app = adapter!.getInstance<ExpressSettings>();
    caseSensitive = app.get('case sensitive routing') === true;
    strict = app.get('strict routing') === true;
  } else if (type === 'fastify') {
    ({ caseSensitive, strict } = fastifyRouting(
      adapter!.getInstance<{ initialConfig?: FastifyInitialConfig }>().initialConfig,
    ));
  }
  const prefix = canonicalPrefix(config?.getGlobalPrefix() ?? '', caseSensitive);
  return Object.freeze({ caseSensitive, strict, prefix });
}

/** Fastify's router defaults: case-sensitive, a trailing slash makes another route. */
function fastifyRouting(
  initialConfig: FastifyInitialConfig | undefined,
): Pick<PathRouting, 'caseSensitive' | 'strict'> {
  const router = initialConfig?.routerOptions;
  const option = <K extends keyof FastifyRouterOptions>(name: K): boolean | undefined =>
    router?.[name] ?? initialConfig?.[name];
  return {
    caseSensitive: option('caseSensitive') !== false,
    strict: option('ignoreTrailingSlash') !== true,
  };
}

/**
 * The table patterns that start with the global prefix, written as if patterns saw it: they are
 * matched against the path without the prefix, so `^/api/towns` under `setGlobalPrefix('api')`
 * would only match `/api/api/towns`.
 */
export function patternsUnderPrefix(rows: readonly PatternRules[], routing: PathRouting): string[] {
  const { prefix } = routing;
  if (prefix === '') return [];
  const found: string[] = [];
  for (const { source, pattern } of rows) {
    // The literal start of the compiled pattern: `^(?:^\/api\/towns)` for the string pattern
    // `^/api/towns`, or a RegExp's own source such as `^\/api`.
    let start = pattern.source.replace(/^\^(?:\(\?:)?\^?/, '').replace(/\\\//g, '/');
    if (!routing.caseSensitive || pattern.ignoreCase) start = start.toLowerCase();
    if (start.startsWith(prefix) && !/^[\w.~-]/.test(start.slice(prefix.length))) {
      found.push(source);
    }
  }
  return found;
}
