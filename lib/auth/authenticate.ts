import type { ExecutionContext, Type } from '@nestjs/common';
import { andThen } from '../internal/maybe-promise.js';
import { RateLimitConfigError } from '../rate-limit-config.error.js';
import { describeValue } from '../config-validation.js';
import { AuthResolver } from './auth-resolver.js';
import { EmptyInformation } from './empty-information.js';
import type { AuthFunction, Identity, RateLimitRequest } from './identity.js';
import type { AuthenticateEntry, AuthenticateOption } from '../rate-limit.options.js';

/** A caller identity after normalisation: the group is always set. */
export interface ResolvedIdentity extends Identity {
  readonly user: string;
  readonly group: string;
}

/** The compiled `authenticate` option: one function that returns a normalised identity. */
export type Authenticator = (
  request: RateLimitRequest,
  context: ExecutionContext,
) => Promise<ResolvedIdentity> | ResolvedIdentity;

/** Creates the instance of an `AuthResolver` subclass, through Nest's DI. */
export type ResolverFactory = (type: Type<AuthResolver>) => Promise<AuthResolver>;

/** True for a class that extends `AuthResolver` (as opposed to a plain function). */
export function isResolverClass(entry: unknown): entry is Type<AuthResolver> {
  return typeof entry === 'function' && entry.prototype instanceof AuthResolver;
}

/**
 * Turns the `authenticate` option into one function. Entries are validated here, so a wrong value
 * fails at start-up; classes are created once through `createResolver`.
 */
export async function compileAuthenticate(
  option: AuthenticateOption,
  createResolver: ResolverFactory,
): Promise<Authenticator> {
  const entries: readonly AuthenticateEntry[] = Array.isArray(option)
    ? option
    : [option as AuthenticateEntry];
  if (entries.length === 0) {
    throw new RateLimitConfigError(
      'RATE_LIMIT_INVALID_AUTHENTICATE',
      'Invalid rate-limit option "authenticate": the array is empty; pass at least one resolver or leave it out to limit by client IP.',
    );
  }
  const steps = await Promise.all(
    entries.map((entry, index) => compileEntry(entry, index, createResolver)),
  );
  if (steps.length === 1) {
    const only = steps[0]!;
    return (request, context) => andThen(only(request, context), normalizeIdentity);
  }
  return async (request, context) => {
    let lastEmpty: EmptyInformation | undefined;
    for (const step of steps) {
      try {
        return normalizeIdentity(await step(request, context));
      } catch (error) {
        if (!(error instanceof EmptyInformation)) throw error;
        lastEmpty = error;
      }
    }
    throw lastEmpty ?? new EmptyInformation();
  };
}

type Step = (request: RateLimitRequest, context: ExecutionContext) => unknown;

async function compileEntry(
  entry: unknown,
  index: number,
  createResolver: ResolverFactory,
): Promise<Step> {
  if (isResolverClass(entry)) {
    const resolver = await createResolver(entry);
    return (_request, context) => resolver.resolve(context);
  }
  if (entry instanceof AuthResolver) {
    return (_request, context) => entry.resolve(context);
  }
  if (typeof entry === 'function') {
    return entry as AuthFunction;
  }
  throw new RateLimitConfigError(
    'RATE_LIMIT_INVALID_AUTHENTICATE',
    `Invalid rate-limit option "authenticate"${Array.isArray(entry) ? '' : ` (entry ${index + 1})`}: ` +
      `expected a function (request, context) => identity, an AuthResolver instance or an AuthResolver subclass, got ${describeValue(entry)}.`,
  );
}

/**
 * Checks what an auth function returned and fills in the default group. A value that does not
 * name a user is treated like an unidentifiable caller (`EmptyInformation`), never as unlimited.
 */
export function normalizeIdentity(value: unknown): ResolvedIdentity {
  let user: unknown;
  let group: unknown;
  if (Array.isArray(value)) {
    [user, group] = value as unknown[];
  } else if (value !== null && typeof value === 'object') {
    ({ user, group } = value as { user?: unknown; group?: unknown });
  } else {
    throw new EmptyInformation('The auth resolver returned no identity');
  }
  if (typeof user === 'number' || typeof user === 'bigint') user = String(user);
  if (typeof user !== 'string' || user.length === 0) {
    throw new EmptyInformation('The auth resolver returned no user');
  }
  if (group === undefined || group === null) group = 'default';
  if (typeof group !== 'string' || group.length === 0) {
    throw new EmptyInformation('The auth resolver returned an invalid group');
  }
  return { user, group };
}
