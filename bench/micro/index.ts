/**
 * Runs the micro-benchmarks, each part in its own child process: decisions/s, Redis commands and
 * Redis memory per counter (`decisions.js`), then heap per key for each store (`heap.js`, with
 * `--expose-gc`).
 *
 * @module
 */
import { fileURLToPath } from 'node:url';
import { forkTracked, waitForMessage } from '../support/children.js';
import type { MicroSettings } from '../support/mode.js';
import type { MicroResults, RedisMemory } from '../support/results.js';
import {
  HEAP_SUBJECTS,
  type DecisionsJob,
  type DecisionsMessage,
  type HeapJob,
  type HeapMessage,
} from './jobs.js';

const DECISIONS_PATH = fileURLToPath(new URL('./decisions.js', import.meta.url));
const HEAP_PATH = fileURLToPath(new URL('./heap.js', import.meta.url));
/** Upper bounds on each child; far above what they need on a slow machine. */
const DECISIONS_TIMEOUT_MS = 15 * 60_000;
const HEAP_TIMEOUT_MS = 3 * 60_000;

export async function runMicro(
  settings: MicroSettings,
  redis: { readonly url: string; readonly pid: number } | undefined,
  problems: string[],
  log: (line: string) => void,
): Promise<MicroResults> {
  const redisMemory: RedisMemory[] = [];
  const results: MicroResults = {
    settings,
    decisions: [],
    commands: [],
    redisMemory,
    heap: [],
    timers: [],
  };

  const job: DecisionsJob = { settings, redisUrl: redis?.url, redisPid: redis?.pid };
  const decisions = forkTracked(DECISIONS_PATH, [JSON.stringify(job)]);
  try {
    // Results arrive one by one, so a child that fails late still leaves what it measured.
    decisions.process.on('message', (message: DecisionsMessage) => {
      if (message.type === 'progress') log(`micro: ${message.line}`);
      else if (message.type === 'decision') results.decisions.push(message.decision);
      else if (message.type === 'commands') results.commands.push(message.count);
      else if (message.type === 'redisMemory') redisMemory.push(message.memory);
      else if (message.type === 'problem') problems.push(message.text);
    });
    await waitForMessage(decisions, 'micro decisions', DECISIONS_TIMEOUT_MS, (m) =>
      (m as DecisionsMessage).type === 'done' ? true : undefined,
    );
  } catch (error) {
    problems.push(
      `Micro-benchmarks (decisions): ${error instanceof Error ? error.message : error}`,
    );
  } finally {
    await decisions.kill();
  }

  for (const subject of HEAP_SUBJECTS) {
    const heapJob: HeapJob = { subject, keys: settings.heapKeys };
    const child = forkTracked(HEAP_PATH, [JSON.stringify(heapJob)], {
      execArgv: ['--expose-gc'],
    });
    try {
      const result = await waitForMessage(child, `heap: ${subject}`, HEAP_TIMEOUT_MS, (m) => {
        const message = m as HeapMessage;
        return message.type === 'result' ? message : undefined;
      });
      results.heap.push(result.heap);
      results.timers.push(...result.timers);
      log(`micro: heap ${subject}: ${result.heap.bytesPerKey.toFixed(1)} bytes/key`);
    } catch (error) {
      problems.push(`Heap per key (${subject}): ${error instanceof Error ? error.message : error}`);
    } finally {
      await child.kill();
    }
  }
  return results;
}
