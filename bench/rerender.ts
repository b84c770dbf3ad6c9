/**
 * Renders RESULTS.md again from an existing results.json, without measuring anything:
 * `node dist-bench/bench/rerender.js [--quick] [--micro-only]`.
 *
 * @module
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { modeFromArgs } from './support/mode.js';
import { outputFiles, writeResults } from './support/output.js';
import type { BenchResults } from './support/results.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url)).replace(/\/$/, '');

const mode = modeFromArgs(process.argv.slice(2));
const files = outputFiles(ROOT, mode.name, mode.microOnly);
const results = JSON.parse(await readFile(files.json, 'utf8')) as BenchResults;
await writeResults(results, files);
console.log(`rendered ${files.markdown} from ${files.json}`);
