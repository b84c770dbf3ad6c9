import type { ExecutionContext } from '@nestjs/common';
import type { IncomingMessage } from 'node:http';

/** Who is calling: the counter owner and the group that selects the rule. */
export interface Identity {
  /** The counter owner: an IP, a user id, an API key id... Counters are per user. */
  user: string;
  /**
   * Selects the rule: the first rule whose `group` equals this is used.
   * @default 'default'
   */
  group?: string;
}

/** An identity as a `[user, group]` pair, as asgi-ratelimit's auth functions return it. */
export type IdentityTuple = readonly [user: string, group?: string];

/** What an auth function may return. */
export type IdentityLike = Identity | IdentityTuple;

/**
 * The HTTP request as auth functions see it: Node's request plus the fields Express and common
 * middleware add. On Fastify it is Fastify's request, which has the same `headers`, `ip`,
 * `originalUrl` and `session` (its Node request is `request.raw`). Cast it to your framework's
 * type when you need more.
 */
export interface RateLimitRequest extends IncomingMessage {
  /**
   * The client address as the framework computed it from its own trust-proxy setting (Express's
   * `trust proxy`, Fastify's `trustProxy`).
   */
  readonly ip?: string;
  /** The URL as received, before any router rewrote `url`. */
  readonly originalUrl?: string;
  /**
   * The session, when a session middleware or plugin runs before the guard (express-session,
   * `@fastify/secure-session`, `@fastify/session`).
   */
  readonly session?: unknown;
  /** The user a Passport-style middleware attached, if any. */
  readonly user?: unknown;
}

/**
 * A function that identifies the caller. It may return an {@link Identity} or a `[user, group]`
 * pair, synchronously or as a promise, and throws {@link EmptyInformation} when it cannot.
 *
 * (Declared through a method so that a function taking your own request type, such as Express's
 * `Request`, is accepted.)
 */
export type AuthFunction = {
  authenticate(
    request: RateLimitRequest,
    context: ExecutionContext,
  ): IdentityLike | Promise<IdentityLike>;
}['authenticate'];
