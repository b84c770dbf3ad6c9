/**
 * Writes the generated results: `results.json` and the Markdown rendered from it, both passed
 * through the repository's Prettier configuration so `prettier --check` stays clean.
 *
 * @module
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as prettier from 'prettier';
import { render } from '../render/index.js';
import type { BenchResults } from './results.js';

export interface OutputFiles {
  readonly json: string;
  readonly markdown: string;
}

/**
 * Where a run writes: the full run in bench/; a quick or micro-only run in dist-bench/, so it
 * never replaces the full results.
 */
export function outputFiles(
  root: string,
  mode: BenchResults['mode'],
  microOnly: boolean,
): OutputFiles {
  if (mode === 'full' && !microOnly) {
    return {
      json: join(root, 'bench', 'results.json'),
      markdown: join(root, 'bench', 'RESULTS.md'),
    };
  }
  const name = `${mode}${microOnly ? '-micro' : ''}`;
  return {
    json: join(root, 'dist-bench', `results.${name}.json`),
    markdown: join(root, 'dist-bench', `RESULTS.${name}.md`),
  };
}

async function formatted(text: string, file: string): Promise<string> {
  const options = (await prettier.resolveConfig(file)) ?? {};
  return prettier.format(text, { ...options, filepath: file });
}

export async function writeResults(results: BenchResults, files: OutputFiles): Promise<void> {
  await writeFile(files.json, await formatted(JSON.stringify(results, null, 2), files.json));
  await writeFile(files.markdown, await formatted(render(results), files.markdown));
}
