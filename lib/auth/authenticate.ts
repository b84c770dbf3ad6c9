import { Logger, type ExecutionContext, type Type } from '@nestjs/common';
import { andThen } from '../internal/maybe-promise.js';
import { RateLimitConfigError } from '../rate-limit-config.error.js';
import { describeValue } from '../config-validation.js';
import { AuthResolver } from './auth-resolver.js';
import { EmptyInformation } from './empty-information.js';
import { createJwtAuth } from './jwt.auth-resolver.js';
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
 * fails at start-up; classes are created once through `createResolver`. What an entry returns is
 * checked on every request: a value that is not an identity is a set-up mistake, reported once per
 * entry and kind through Nest's `Logger`, and the request is treated as unidentifiable.
 */
export async function compileAuthenticate(
  option: AuthenticateOption,
  createResolver: ResolverFactory,
): Promise<Authenticator> {
  const isList = Array.isArray(option);
  const entries: readonly AuthenticateEntry[] = isList ? option : [option as AuthenticateEntry];
  if (entries.length === 0) {
    throw new RateLimitConfigError(
      'RATE_LIMIT_INVALID_AUTHENTICATE',
      'Invalid rate-limit option "authenticate": the array is empty; pass at least one resolver or leave it out to limit by client IP.',
    );
  }
  const steps = await Promise.all(
    entries.map((entry, index) =>
      compileEntry(entry, isList ? `authenticate[${index}]` : 'authenticate', createResolver),
    ),
  );
  if (steps.length === 1) {
    const only = steps[0]!;
    return (request, context) => andThen(only.identify(request, context), only.normalize);
  }
  return async (request, context) => {
    let lastEmpty: EmptyInformation | undefined;
    for (const step of steps) {
      try {
        return step.normalize(await step.identify(request, context));
      } catch (error) {
        if (!(error instanceof EmptyInformation)) throw error;
        lastEmpty = error;
      }
    }
    throw lastEmpty ?? new EmptyInformation();
  };
}

/** One entry of the option: how it identifies the caller, and how its answer is checked. */
interface Step {
  readonly identify: (request: RateLimitRequest, context: ExecutionContext) => unknown;
  readonly normalize: (value: unknown) => ResolvedIdentity;
}

async function compileEntry(
  entry: unknown,
  option: string,
  createResolver: ResolverFactory,
): Promise<Step> {
  if (isResolverClass(entry)) {
    const resolver = await createResolver(entry);
    return checked(option, `${entry.name}.resolve`, (_request, context) =>
      resolver.resolve(context),
    );
  }
  if (entry instanceof AuthResolver) {
    return checked(option, `${entry.constructor.name}.resolve`, (_request, context) =>
      entry.resolve(context),
    );
  }
  if (entry === createJwtAuth) {
    // Called with (request, context) it would fail on every request; say so now instead.
    throw new RateLimitConfigError(
      'RATE_LIMIT_INVALID_AUTHENTICATE',
      `Invalid rate-limit option "${option}": createJwtAuth makes the auth function; pass createJwtAuth(secret, algorithms), not createJwtAuth.`,
    );
  }
  if (typeof entry === 'function') {
    // `{ authenticate: () => ... }` names an arrow function after the option; that says nothing.
    const name = entry.name === 'authenticate' ? '' : entry.name;
    return checked(option, name, entry as AuthFunction);
  }
  throw new RateLimitConfigError(
    'RATE_LIMIT_INVALID_AUTHENTICATE',
    `Invalid rate-limit option "${option}": ` +
      `expected a function (request, context) => identity, an AuthResolver instance or an AuthResolver subclass, got ${describeValue(entry)}.`,
  );
}

/** A step whose answers are checked, with mistakes reported once per kind. */
function checked(option: string, name: string, identify: Step['identify']): Step {
  const reported = new Set<NotAnIdentity>();
  const report = (kind: NotAnIdentity): void => {
    if (reported.has(kind)) return;
    reported.add(kind);
    logger.error(notAnIdentityMessage(option, name, kind));
  };
  return { identify, normalize: (value) => normalizeIdentity(value, report) };
}

const logger = new Logger('RateLimit');

/**
 * What is wrong with an answer that is not an identity, when that is a set-up mistake rather than
 * a caller who cannot be identified (a missing or empty user is the latter, and is not reported).
 */
export type NotAnIdentity =
  | 'function'
  | 'nothing'
  | 'primitive'
  | 'empty array'
  | 'no user field'
  | 'user type'
  | 'group type';

function notAnIdentityMessage(option: string, name: string, kind: NotAnIdentity): string {
  const identity = 'return { user, group } or [user, group]';
  const problem: Record<NotAnIdentity, string> = {
    function:
      name === ''
        ? 'it returned a function: pass the auth function itself, (request, context) => identity, not a factory of them'
        : `it returned a function, so ${name} makes auth functions: pass ${name}(...), the function it returns, not ${name}`,
    nothing: `it returned undefined or null: ${identity}, and throw EmptyInformation when it cannot identify the caller`,
    primitive: `it returned a plain value, not an identity: ${identity} (a user id alone is { user: id })`,
    'empty array': `it returned an empty array: ${identity}`,
    'no user field': `it returned an object without a "user" field: ${identity}, mapping your own field (e.g. { user: account.id })`,
    'user type': 'its "user" is neither a string nor a number: return the user id as a string',
    'group type': `its "group" is not a string: return the group name of a rule, or no group for 'default'`,
  };
  return (
    `Invalid rate-limit option "${option}"${name === '' ? '' : ` (${name})`}: ${problem[kind]}. ` +
    'Its requests are treated as unidentifiable (a 401, or the next entry of a chain) until this is fixed. ' +
    'Logged once.'
  );
}

/**
 * Checks what an auth function returned and fills in the default group. A value that does not
 * name a user is treated like an unidentifiable caller (`EmptyInformation`), never as unlimited;
 * `report`, when given, hears of values that are set-up mistakes rather than an absent user.
 */
export function normalizeIdentity(
  value: unknown,
  report?: (kind: NotAnIdentity) => void,
): ResolvedIdentity {
  let user: unknown;
  let group: unknown;
  if (Array.isArray(value)) {
    if (value.length === 0) report?.('empty array');
    [user, group] = value as unknown[];
  } else if (value !== null && typeof value === 'object') {
    ({ user, group } = value as { user?: unknown; group?: unknown });
    if (user === undefined && !('user' in value)) report?.('no user field');
  } else {
    report?.(
      typeof value === 'function'
        ? 'function'
        : value === undefined || value === null
          ? 'nothing'
          : 'primitive',
    );
    throw new EmptyInformation('The auth resolver returned no identity');
  }
  if ((typeof user === 'number' && Number.isFinite(user)) || typeof user === 'bigint') {
    user = String(user);
  }
  if (typeof user !== 'string' || user.length === 0) {
    // undefined, null, '' and NaN are a caller without a user (say, a header that was not sent).
    if (
      user !== undefined &&
      user !== null &&
      typeof user !== 'string' &&
      typeof user !== 'number'
    ) {
      report?.('user type');
    }
    throw new EmptyInformation('The auth resolver returned no user');
  }
  if (group === undefined || group === null) group = 'default';
  if (typeof group !== 'string' || group.length === 0) {
    if (typeof group !== 'string') report?.('group type');
    throw new EmptyInformation('The auth resolver returned an invalid group');
  }
  return { user, group };
}
