/**
 * Formatting shared by the parts of `RESULTS.md`: numbers, Markdown tables, target rows.
 *
 * @module
 */

export const DASH = '–';

export function int(value: number | undefined): string {
  return value === undefined ? DASH : Math.round(value).toLocaleString('en-US');
}

export function fixed(value: number | undefined, digits: number): string {
  return value === undefined ? DASH : value.toFixed(digits);
}

export function mb(bytes: number | undefined): string {
  return bytes === undefined ? DASH : (bytes / 1_048_576).toFixed(1);
}

export function percent(share: number | undefined): string {
  return share === undefined ? DASH : `${Math.round(share * 100)} %`;
}

export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const escape = (cell: string): string => cell.replace(/\|/g, '\\|');
  const align = header.map((_, i) => (i === 0 ? '---' : '--:'));
  return [header, align, ...rows].map((row) => `| ${row.map(escape).join(' | ')} |`).join('\n');
}

/** One row of the targets table. `pass` undefined: not measured, which counts as a miss. */
export interface Target {
  readonly target: string;
  readonly measured: string;
  readonly pass: boolean | undefined;
}

export function verdict(pass: boolean | undefined): string {
  if (pass === undefined) return '**miss** (not measured)';
  return pass ? 'pass' : '**miss**';
}

export function atLeast(value: number | undefined, bound: number): boolean | undefined {
  return value === undefined ? undefined : value >= bound;
}

export function atMost(value: number | undefined, bound: number): boolean | undefined {
  return value === undefined ? undefined : value <= bound;
}

/**
 * Every part passes: false as soon as one is measured and fails, undefined when none fails but
 * one was not measured (a target with a part missing is not met).
 */
export function allPass(parts: readonly (boolean | undefined)[]): boolean | undefined {
  if (parts.includes(false)) return false;
  return parts.includes(undefined) ? undefined : true;
}
