import { createHash } from 'node:crypto';
import {
  standardWindowMs,
  type RateLimitAlgorithm,
  type UnitLimit,
} from '../../rules/rule-units.js';
import type { RateLimitCounter } from '../rate-limit.backend.js';

/**
 * Redis key layout of `RedisBackend` and `SlidingRedisBackend`.
 *
 * Every key starts with the prefix (default `rl:`, never containing `{` or `}`), then the user's
 * hash tag `{...}`, then what the key is for:
 *
 * - `<prefix>{<user>}b` (string): the user's block, a key that lives exactly as long as the block
 *   (its value, `1`, says nothing), whether a rule's `blockTime` or `block()` started it; shared by
 *   both backends, since a block belongs to the user.
 * - `<prefix>{<user>}w:<scope><method>:<unit>` (string, `RedisBackend`): the running fixed window
 *   of one unit of one counter, holding its count and living exactly as long as the window (see
 *   lua/fixed-window.lua). (Earlier development builds kept every unit of a counter in one hash under
 *   `f:`; no script reads those keys any more, and they expire by themselves.)
 * - `<prefix>{<user>}l:<scope><method>:<unit>` (list, `SlidingRedisBackend`): the log of one
 *   unit, one entry per admitted request: the millisecond it was admitted in (Redis clock, as a
 *   decimal integer), appended, so oldest first. Each request first drops from the head the
 *   entries that left the window, so the list holds the requests of the last window (up to
 *   `limit`) plus those that left it since the last request. (The sliding script before version 3
 *   kept a sorted set under `s:` and a sequence under `q:`; the current one never reads those
 *   keys, which expire by themselves.)
 *
 * - `<prefix>{<user>}sw:<scope><method>:<unit>` (string, `'sliding-window'`): the weighted
 *   two-window counter of one unit, `<window index>:<previous cost>:<current cost>`, expiring when
 *   the window after its window ends.
 * - `<prefix>{<user>}tb:<scope><method>:<unit>` (string, `'token-bucket'`): the bucket of one
 *   unit, expiring when it is full again, its value the remainder that makes its debt exact.
 *
 * Each algorithm has its own kind (`w`, `l`, `sw`, `tb`; the first two as before algorithms
 * existed, so the windows and logs running when an application upgrades keep counting), so a
 * counter whose rule switches algorithms never reads another algorithm's value.
 *
 * `<unit>` is the unit name (`second` ... `month`), or `<unit>/<windowMs>` for a hand-built query
 * whose window is not the unit's standard one (as `MemoryBackend` keeps those apart too).
 * Example: `rl:{=203.0.113.7}w:7:path:/a1:*:minute` holds the minute of the counter
 * `{ user: '203.0.113.7', scope: 'path:/a', method: '*' }`; `rl:{=203.0.113.7}b` its user's block.
 *
 * One hash slot per call (Redis Cluster): Redis hashes only the text between the first `{` and
 * the first `}` after it. The prefix has no brace, so the first `{` is the one that opens the tag;
 * the tag never contains `}` and is never empty, so the first `}` closes it. Every key of one user
 * therefore lands in the slot of the user's tag, whatever the scope or method contain.
 *
 * The tag ({@link userTag}) is `=` followed by the user with `%`, `{`, `}`, ASCII control
 * characters and DEL written as `%XX`, and lone UTF-16 surrogates (which UTF-8 cannot carry, so
 * two of them would otherwise reach Redis as the same `U+FFFD`) as `%uXXXX`. When that text is
 * longer than 100 UTF-8 bytes, the tag is `#` followed by the SHA-256 (hex) of it instead. The
 * escaped text decodes back to the user, the first character says which form it is, and SHA-256 is
 * collision-resistant, so two users never share a tag.
 *
 * Scope and method ({@link encodePart}) are escaped the same way and written as
 * `<length>:<escaped>` (the `counterKey()` scheme: a reader takes the digits up to the first `:`
 * as the length, then exactly that many characters, so no character inside a part is ever read as
 * a separator), or as `#<sha256 hex>` when the escaped text passes 200 UTF-8 bytes (a digit or a
 * `#` first tells the forms apart). Each part delimits itself, so the concatenation names exactly
 * one (kind, scope, method) and nothing a user sends can reach into another counter's key.
 *
 * Memory, measured with `MEMORY USAGE` on Redis 7.0.15 (64-bit, jemalloc, default
 * `*-max-listpack-*` settings) for user `203.0.113.7`, scope `path:/api/items`, method `*`
 * (key names of 40 to 50 bytes; longer users, scopes or a longer prefix add their length):
 * - fixed window: 104 bytes per running (counter, unit) window by `MEMORY USAGE`, 148 bytes of
 *   `used_memory` with Redis's expiry entry (measured over 100,000 keys; the one-hash layout before
 *   took 196 for one unit, about 24 more per further unit), so a rule of one unit costs a quarter
 *   less and a rule of three units about 80% more;
 * - block: 72 bytes per blocked user;
 * - token bucket: 104 bytes per (counter, unit) bucket that is not full (a full one has no key);
 * - sliding window: 120 bytes per (counter, unit) counter (its value holds the window index and
 *   both costs), for as long as its last window and the next one last;
 * - sliding log: 216 bytes for a (counter, unit) log holding one request, then about 10 bytes
 *   per further request in the window, at any length (100 entries: 1,208 bytes; 1,000 entries:
 *   10,464 bytes; 2,000: 20,744). So a log costs up to about `limit` entries per unit: the fixed
 *   window stays smaller for large limits.
 * Keys expire with their window (blocks with the block, a sliding log two windows after its oldest
 * entry, so between one and two windows after its newest), so idle users cost nothing. (Under the
 * `testClock` test hook, every key expires in virtual time only; see lua/test-clock.lua.)
 *
 * @module
 */

/** The prefix used when none is given. */
export const DEFAULT_KEY_PREFIX = 'rl:';

/** Longest escaped user (UTF-8 bytes) kept readable in the hash tag; longer ones are hashed. */
export const MAX_PLAIN_USER_BYTES = 100;

/** Longest escaped scope or method (UTF-8 bytes) kept readable; longer ones are hashed. */
export const MAX_PLAIN_PART_BYTES = 200;

/**
 * Characters written as `%XX` (or `%uXXXX` for lone surrogates): the escape character itself, the
 * hash-tag braces, ASCII control characters, DEL, and UTF-16 surrogates that are not part of a
 * pair (the `u` flag makes a well-formed pair one code point, which this class does not match).
 */
// eslint-disable-next-line no-control-regex
const NEEDS_ESCAPE = /[%{}\u0000-\u001f\u007f\ud800-\udfff]/gu;
// eslint-disable-next-line no-control-regex
const HAS_ESCAPE = /[%{}\u0000-\u001f\u007f\ud800-\udfff]/u;

function escapeChar(char: string): string {
  const code = char.charCodeAt(0);
  if (code >= 0xd800) return `%u${code.toString(16).toUpperCase()}`;
  return `%${code.toString(16).toUpperCase().padStart(2, '0')}`;
}

/**
 * Writes `%`, `{`, `}`, ASCII control characters, DEL and lone surrogates as `%XX` / `%uXXXX`;
 * every other character (`:`, spaces, unicode, emoji) stays as it is. Decodable, hence
 * injective, and the result has no brace and is valid UTF-16 (so its UTF-8 form is injective too).
 */
export function escapeKeyText(text: string): string {
  return HAS_ESCAPE.test(text) ? text.replace(NEEDS_ESCAPE, escapeChar) : text;
}

function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/** UTF-8 length, without encoding when the answer is obvious. */
function exceedsBytes(text: string, max: number): boolean {
  // A UTF-16 code unit takes 1 to 3 UTF-8 bytes (a pair: 4 bytes for 2 units).
  if (text.length > max) return true;
  if (text.length * 3 <= max) return false;
  return Buffer.byteLength(text, 'utf8') > max;
}

/**
 * The user's hash tag, braces included: `{=<escaped user>}`, or `{#<sha256 hex>}` when the
 * escaped user is longer than {@link MAX_PLAIN_USER_BYTES} bytes. Never empty inside the braces,
 * never containing another brace.
 */
export function userTag(user: string): string {
  const escaped = escapeKeyText(user);
  return exceedsBytes(escaped, MAX_PLAIN_USER_BYTES) ? `{#${sha256Hex(escaped)}}` : `{=${escaped}}`;
}

/**
 * One self-delimiting part of a key: `<length>:<escaped>`, or `#<sha256 hex>` when the escaped
 * text is longer than {@link MAX_PLAIN_PART_BYTES} bytes.
 */
export function encodePart(text: string): string {
  const escaped = escapeKeyText(text);
  return exceedsBytes(escaped, MAX_PLAIN_PART_BYTES)
    ? `#${sha256Hex(escaped)}`
    : `${escaped.length}:${escaped}`;
}

/**
 * Scope and method, each self-delimiting: the part after the kind in the keys of one counter.
 * Computed once per call by the backends, which build several keys from it.
 */
export function counterPart(counter: RateLimitCounter): string {
  return encodePart(counter.scope) + encodePart(counter.method);
}

/**
 * `<prefix>{<user>}`: how every key of one user starts. The `...At` functions below build keys
 * from it, so a call that needs several keys of one user computes the hash tag once.
 */
export function userKeyStart(prefix: string, user: string): string {
  return prefix + userTag(user);
}

/** `<prefix>{<user>}b`: the user's block, shared by both Redis backends. */
export function blockKey(prefix: string, user: string): string {
  return blockKeyAt(userKeyStart(prefix, user));
}

/** {@link blockKey} from the user's {@link userKeyStart}. */
export function blockKeyAt(start: string): string {
  return `${start}b`;
}

/** `<prefix>{<user>}w:<scope><method>:<unit>`: one fixed window of one counter (a count). */
export function fixedWindowKey(
  prefix: string,
  counter: RateLimitCounter,
  limit: Pick<UnitLimit, 'unit' | 'windowMs'>,
): string {
  return fixedWindowKeyAt(
    userKeyStart(prefix, counter.user),
    counterPart(counter),
    unitName(limit),
  );
}

/**
 * {@link fixedWindowKey} from the user's {@link userKeyStart}, the {@link counterPart} and the
 * {@link unitName}.
 */
export function fixedWindowKeyAt(start: string, part: string, name: string): string {
  return `${start}w:${part}:${name}`;
}

/** `<prefix>{<user>}l:<scope><method>:<unit>`: the sliding log of one unit of one counter. */
export function slidingLogKey(
  prefix: string,
  counter: RateLimitCounter,
  limit: Pick<UnitLimit, 'unit' | 'windowMs'>,
): string {
  return slidingLogKeyAt(userKeyStart(prefix, counter.user), counterPart(counter), unitName(limit));
}

/**
 * {@link slidingLogKey} from the user's {@link userKeyStart}, the {@link counterPart} and the
 * {@link unitName}.
 */
export function slidingLogKeyAt(start: string, part: string, name: string): string {
  return `${start}l:${part}:${name}`;
}

/** The kind of key each algorithm keeps its counters under (see the layout above). */
export const ALGORITHM_KEY_KINDS: Readonly<Record<RateLimitAlgorithm, string>> = Object.freeze({
  'fixed-window': 'w',
  'sliding-log': 'l',
  'sliding-window': 'sw',
  'token-bucket': 'tb',
});

/** `<prefix>{<user>}<kind>:<scope><method>:<unit>`: one unit of one counter of `algorithm`. */
export function unitKey(
  prefix: string,
  counter: RateLimitCounter,
  algorithm: RateLimitAlgorithm,
  limit: Pick<UnitLimit, 'unit' | 'windowMs'>,
): string {
  return unitKeyAt(
    userKeyStart(prefix, counter.user),
    ALGORITHM_KEY_KINDS[algorithm],
    counterPart(counter),
    unitName(limit),
  );
}

/**
 * {@link unitKey} from the user's {@link userKeyStart}, the algorithm's key kind, the
 * {@link counterPart} and the {@link unitName}.
 */
export function unitKeyAt(start: string, kind: string, part: string, name: string): string {
  return `${start}${kind}:${part}:${name}`;
}

/**
 * The name a unit is stored under: the unit itself for its standard window (every `Rule`), else
 * `<unit>/<windowMs>`, so windows of different lengths never share a count.
 */
export function unitName(limit: Pick<UnitLimit, 'unit' | 'windowMs'>): string {
  return isStandardWindow(limit) ? limit.unit : `${limit.unit}/${limit.windowMs}`;
}

/** True when `unitName(limit)` is just the unit (the window is the unit's standard one). */
export function isStandardWindow(limit: Pick<UnitLimit, 'unit' | 'windowMs'>): boolean {
  return limit.windowMs === standardWindowMs(limit.unit);
}

/** The units of `limits` whose window is not their standard one (hand-built queries only). */
export function nonStandardWindows(limits: readonly UnitLimit[]): UnitLimit[] {
  return limits.filter((limit) => !isStandardWindow(limit));
}
