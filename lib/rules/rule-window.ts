import { describeValue } from '../config-validation.js';

/** Milliseconds per unit letter of a window string. */
const LETTER_MS: Readonly<Record<string, number>> = Object.freeze({
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
});

const WINDOW_STRING = /^(\d+)([smhd])$/;

/**
 * What a window error says the forms are. Only these, so that no spelling can mean something
 * other than what it seems: `'15M'` (minutes or months?), `'1.5h'`, `'1h30m'`, `'2w'` and `'90'`
 * are refused, each with the spelling to use instead.
 */
export const WINDOW_FORMS =
  "a number of seconds (such as 900 or 1.5, in whole milliseconds) or a string such as '90s', " +
  "'15m', '2h' or '7d'";

/** The result of {@link windowMs}: the length, or why the value is not a window. */
export type WindowParse =
  { readonly ok: true; readonly ms: number } | { readonly ok: false; readonly problem: string };

/**
 * The length in milliseconds of a rule's `window` (see `RuleInput.window` for the forms), a
 * whole number from 1 to `Number.MAX_SAFE_INTEGER`; or what is wrong with it, as the end of a
 * sentence starting with `"window" `.
 */
export function windowMs(value: unknown): WindowParse {
  if (typeof value === 'number') return fromSeconds(value);
  if (typeof value === 'string') return fromString(value);
  return refuse(`${describeValue(value)}.`);
}

function fromSeconds(seconds: number): WindowParse {
  if (!Number.isFinite(seconds) || seconds < 0.001) {
    return refuse(`${describeValue(seconds)}; a window lasts at least 1 ms (0.001).`);
  }
  // 0.3 * 1000 is not always exactly 300 in floating point: accept what is a whole ms up to that.
  const ms = Math.round(seconds * 1000);
  if (Math.abs(ms - seconds * 1000) > 1e-6 * Math.max(1, ms)) {
    return refuse(
      `${describeValue(seconds)}: a window is whole milliseconds (at most three decimals of a ` +
        `second), such as ${ms / 1000}.`,
    );
  }
  return checked(ms, seconds);
}

function fromString(text: string): WindowParse {
  const match = WINDOW_STRING.exec(text);
  if (match !== null && Number(match[1]) > 0) {
    return checked(Number(match[1]) * LETTER_MS[match[2]!]!, text);
  }
  if (match !== null) return refuse(`${describeValue(text)}; a window lasts at least 1 ms.`);
  return refuse(`${describeValue(text)}${stringHint(text)}`);
}

function checked(ms: number, value: unknown): WindowParse {
  if (!Number.isSafeInteger(ms)) {
    return refuse(`${describeValue(value)}: too long a window (at most 2^53 - 1 ms).`);
  }
  return { ok: true, ms };
}

function refuse(got: string): WindowParse {
  return { ok: false, problem: `must be ${WINDOW_FORMS}, got ${got}` };
}

/** How to write a string that is almost a window, or `'.'`. */
function stringHint(text: string): string {
  const trimmed = text.trim();
  if (trimmed !== '' && Number.isFinite(Number(trimmed))) {
    return `; write seconds as a number (${Number(trimmed)}) or with their unit ('${trimmed}s').`;
  }
  const spaced = /^(\d+)\s*([a-zA-Z]+)$/.exec(trimmed);
  if (spaced !== null) {
    const [, amount, unit] = spaced;
    if (unit === 'M') {
      return "; the unit letters are lower case: 'm' is minutes, and a month is written in days ('31d').";
    }
    const letter = UNIT_WORDS[unit!] ?? UNIT_WORDS[unit!.toLowerCase()];
    if (letter === 'w') return `; weeks are not a unit: write '${Number(amount) * 7}d'.`;
    if (letter === 'ms') {
      return `; milliseconds are not a unit: write the window as a number of seconds (${Number(amount) / 1000}).`;
    }
    if (letter !== undefined) return `; did you mean '${amount}${letter}'?`;
  }
  if (/^\d*\.\d+\s*[a-z]$/i.test(trimmed)) {
    return "; the number of a window string is whole: write a smaller unit ('90m', not '1.5h').";
  }
  if (/^(\d+[a-z]+){2,}$/i.test(trimmed)) {
    return "; a window string has one number and one unit: write '90m' for 1h30m.";
  }
  return '.';
}

/** Unit spellings users write, by the letter meant (`'w'` and `'ms'` have none). */
const UNIT_WORDS: Readonly<Record<string, string>> = Object.freeze({
  s: 's',
  S: 's',
  sec: 's',
  secs: 's',
  second: 's',
  seconds: 's',
  m: 'm',
  min: 'm',
  mins: 'm',
  minute: 'm',
  minutes: 'm',
  h: 'h',
  H: 'h',
  hr: 'h',
  hrs: 'h',
  hour: 'h',
  hours: 'h',
  d: 'd',
  D: 'd',
  day: 'd',
  days: 'd',
  w: 'w',
  week: 'w',
  weeks: 'w',
  ms: 'ms',
});
