import { createHash } from 'node:crypto';
import { RATE_LIMIT_ALGORITHMS } from '../../rules/rule-units.js';
import type { RateLimitCounter } from '../rate-limit.backend.js';
import {
  blockKey,
  DEFAULT_KEY_PREFIX,
  encodePart,
  escapeKeyText,
  fixedWindowKey,
  isStandardWindow,
  slidingLogKey,
  unitKey,
  unitName,
  userTag,
} from './redis-keys.js';

/** The slot rule of Redis Cluster, reduced to what is hashed: the first non-empty `{...}`. */
function hashedPart(key: string): string {
  const open = key.indexOf('{');
  if (open < 0) return key;
  const close = key.indexOf('}', open + 1);
  return close > open + 1 ? key.slice(open + 1, close) : key;
}

/** Decodes escapeKeyText, to show that it is reversible. */
function unescape(text: string): string {
  return text.replace(/%u([0-9A-F]{4})|%([0-9A-F]{2})/g, (_, wide?: string, narrow?: string) =>
    String.fromCharCode(parseInt(wide ?? narrow!, 16)),
  );
}

const HOSTILE = [
  '',
  'a',
  'a}b{c',
  '{}',
  '}',
  '{',
  '{a}',
  ':',
  '::',
  '1:',
  '%',
  '%7B',
  '%7D',
  '%25',
  '%u',
  '%uD800',
  '#',
  '#' + 'a'.repeat(64),
  '=',
  '=a',
  '\n',
  '\r\n',
  '\u0000',
  '\u007f',
  ' ',
  '\uD800',
  '\uDC00',
  '\uFFFD',
  '\uD83D\uDE00',
  '🚀',
  'é',
  'ключ',
  'x'.repeat(100),
  'x'.repeat(101),
  'x'.repeat(10_000),
  'x'.repeat(9_999) + 'y',
  'é'.repeat(50),
  'é'.repeat(51),
];

describe('redis keys', () => {
  describe('escapeKeyText', () => {
    it('escapes %, braces, control characters, DEL and lone surrogates only', () => {
      expect(escapeKeyText('plain:/path é 😀')).toBe('plain:/path é 😀');
      expect(escapeKeyText('a}b{c')).toBe('a%7Db%7Bc');
      expect(escapeKeyText('100%')).toBe('100%25');
      expect(escapeKeyText('\n\u0000\u007f')).toBe('%0A%00%7F');
      expect(escapeKeyText('\uD800x\uDC00')).toBe('%uD800x%uDC00');
      expect(escapeKeyText('\uD83D\uDE00')).toBe('\uD83D\uDE00'); // a well-formed pair stays
    });

    it('is reversible, so it never maps two strings to one', () => {
      for (const text of HOSTILE) expect(unescape(escapeKeyText(text))).toBe(text);
      const escaped = HOSTILE.map(escapeKeyText);
      expect(new Set(escaped).size).toBe(HOSTILE.length);
    });

    it('produces well-formed UTF-16, so the UTF-8 Redis receives is distinct too', () => {
      const bytes = HOSTILE.map((text) => Buffer.from(escapeKeyText(text), 'utf8').toString('hex'));
      expect(new Set(bytes).size).toBe(HOSTILE.length);
      for (const text of HOSTILE) expect(escapeKeyText(text)).not.toMatch(/\p{Surrogate}/u);
    });
  });

  describe('userTag', () => {
    it('is one non-empty hash tag with no brace inside', () => {
      for (const user of HOSTILE) {
        const tag = userTag(user);
        expect(tag.startsWith('{')).toBe(true);
        expect(tag.endsWith('}')).toBe(true);
        const inside = tag.slice(1, -1);
        expect(inside.length).toBeGreaterThan(0);
        expect(inside).not.toMatch(/[{}]/);
      }
    });

    it('keeps short users readable and hashes long ones', () => {
      expect(userTag('203.0.113.7')).toBe('{=203.0.113.7}');
      expect(userTag('')).toBe('{=}');
      expect(userTag('x'.repeat(100))).toBe(`{=${'x'.repeat(100)}}`);
      const long = 'x'.repeat(101);
      expect(userTag(long)).toBe(`{#${createHash('sha256').update(long).digest('hex')}}`);
      // The limit is in UTF-8 bytes: 50 × 'é' is 100 bytes, 51 × 'é' is 102.
      expect(userTag('é'.repeat(50))).toBe(`{=${'é'.repeat(50)}}`);
      expect(userTag('é'.repeat(51))).toMatch(/^\{#[0-9a-f]{64}\}$/);
    });

    it('gives every user its own tag, including look-alikes of the hashed form', () => {
      const tags = HOSTILE.map(userTag);
      expect(new Set(tags).size).toBe(HOSTILE.length);
      const hashedLookAlike = '#' + createHash('sha256').update('x'.repeat(101)).digest('hex');
      expect(userTag(hashedLookAlike)).not.toBe(userTag('x'.repeat(101)));
    });
  });

  describe('encodePart', () => {
    it('delimits itself with a length, or hashes long parts', () => {
      expect(encodePart('path:/a')).toBe('7:path:/a');
      expect(encodePart('*')).toBe('1:*');
      expect(encodePart('')).toBe('0:');
      expect(encodePart('a}b')).toBe('5:a%7Db'); // length of the escaped text
      expect(encodePart('p'.repeat(200))).toBe(`200:${'p'.repeat(200)}`);
      expect(encodePart('p'.repeat(201))).toMatch(/^#[0-9a-f]{64}$/);
    });
  });

  describe('keys', () => {
    const counter = (user: string, scope = 'path:/a', method = '*'): RateLimitCounter => ({
      user,
      scope,
      method,
    });
    const minute = { unit: 'minute', windowMs: 60_000 } as const;

    it('follow the documented layout', () => {
      const c = counter('203.0.113.7');
      expect(DEFAULT_KEY_PREFIX).toBe('rl:');
      expect(blockKey('rl:', '203.0.113.7')).toBe('rl:{=203.0.113.7}b');
      expect(fixedWindowKey('rl:', c, minute)).toBe('rl:{=203.0.113.7}w:7:path:/a1:*:minute');
      expect(fixedWindowKey('rl:', c, { unit: 'second', windowMs: 250 })).toBe(
        'rl:{=203.0.113.7}w:7:path:/a1:*:second/250',
      );
      expect(slidingLogKey('rl:', c, minute)).toBe('rl:{=203.0.113.7}l:7:path:/a1:*:minute');
      expect(slidingLogKey('rl:', c, { unit: 'minute', windowMs: 30_000 })).toBe(
        'rl:{=203.0.113.7}l:7:path:/a1:*:minute/30000',
      );
      // Each algorithm has a kind of its own; a custom window carries its length.
      const fifteen = { unit: 'window', windowMs: 900_000 } as const;
      expect(
        RATE_LIMIT_ALGORITHMS.map((algorithm) => unitKey('rl:', c, algorithm, fifteen)),
      ).toEqual([
        'rl:{=203.0.113.7}w:7:path:/a1:*:window/900000',
        'rl:{=203.0.113.7}sw:7:path:/a1:*:window/900000',
        'rl:{=203.0.113.7}l:7:path:/a1:*:window/900000',
        'rl:{=203.0.113.7}tb:7:path:/a1:*:window/900000',
      ]);
      expect(unitKey('rl:', c, 'fixed-window', minute)).toBe(fixedWindowKey('rl:', c, minute));
      expect(unitKey('rl:', c, 'sliding-log', minute)).toBe(slidingLogKey('rl:', c, minute));
    });

    it('put every key of one user in the slot of its tag, whatever the parts contain', () => {
      for (const user of HOSTILE) {
        const tag = userTag(user).slice(1, -1);
        for (const scope of ['path:/a', 'zone:}{', '{x}', 'x'.repeat(5_000)]) {
          const c = counter(user, scope, '{GET}');
          const keys = [
            blockKey('app:rl:', user),
            fixedWindowKey('app:rl:', c, minute),
            ...RATE_LIMIT_ALGORITHMS.map((algorithm) => unitKey('app:rl:', c, algorithm, minute)),
          ];
          for (const key of keys) {
            expect(key.startsWith('app:rl:')).toBe(true);
            expect(hashedPart(key)).toBe(tag);
          }
        }
      }
    });

    it('never give two counters the same key, where naive concatenation would', () => {
      const parts = ['', ':', '1:', 'a', 'a:', ':a', '{x}', '}{', '\n', '*', 'é', '%3A'];
      const keys = new Set<string>();
      let count = 0;
      for (const user of parts) {
        for (const scope of parts) {
          for (const method of parts) {
            const c = counter(user, scope, method);
            for (const algorithm of RATE_LIMIT_ALGORITHMS) {
              keys.add(unitKey('rl:', c, algorithm, minute));
              keys.add(unitKey('rl:', c, algorithm, { unit: 'minute', windowMs: 1 }));
              keys.add(unitKey('rl:', c, algorithm, { unit: 'window', windowMs: 60_000 }));
            }
            count += 12;
          }
        }
        keys.add(blockKey('rl:', user));
        count += 1;
      }
      expect(keys.size).toBe(count);

      const a = counter('d', 'zone:a:b', 'c');
      const b = counter('d', 'zone:a', 'b:c');
      expect(fixedWindowKey('rl:', a, minute)).not.toBe(fixedWindowKey('rl:', b, minute));
      // A user that closes the tag early cannot pose as another user's counter.
      expect(fixedWindowKey('rl:', counter('x}w:7:path:/a1:*'), minute)).not.toBe(
        fixedWindowKey('rl:', counter('x'), minute),
      );
    });
  });

  describe('unitName', () => {
    it('is the unit for its standard window, else unit/windowMs', () => {
      expect(unitName({ unit: 'second', windowMs: 1_000 })).toBe('second');
      expect(unitName({ unit: 'month', windowMs: 2_678_400_000 })).toBe('month');
      expect(unitName({ unit: 'second', windowMs: 250 })).toBe('second/250');
      expect(isStandardWindow({ unit: 'hour', windowMs: 3_600_000 })).toBe(true);
      expect(isStandardWindow({ unit: 'hour', windowMs: 60_000 })).toBe(false);
    });
  });
});
