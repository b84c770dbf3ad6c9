/**
 * The backend conformance suite against {@link MemoryBackend} (a fixed window), on an injected
 * clock: once from time zero, once from a large clock origin with a sweep after every step (a
 * sweep must never change a decision).
 */
import { MemoryBackend } from '../../lib/backends/memory.backend.js';
import { RATE_LIMIT_ALGORITHMS } from '../../lib/rules/rule-units.js';
import { describeBackendConformance } from './backend-conformance.js';
import { describeBackendProperties } from './backend-properties.js';

describeBackendConformance({
  name: 'memory',
  algorithm: 'fixed',
  async create() {
    let now = 0;
    const backend = new MemoryBackend({ clock: () => now, sweepIntervalMs: 0 });
    return {
      backend,
      advance(ms: number) {
        now += ms;
      },
      async close() {
        backend.close();
      },
    };
  },
});

describeBackendConformance({
  name: 'memory (clock from 2^40 ms, sweep on every advance)',
  algorithm: 'fixed',
  async create() {
    let now = 2 ** 40;
    const backend = new MemoryBackend({ clock: () => now, sweepIntervalMs: 0 });
    return {
      backend,
      advance(ms: number) {
        now += ms;
        backend.sweep();
      },
      async close() {
        backend.close();
      },
    };
  },
});

describeBackendProperties({
  name: 'MemoryBackend',
  algorithms: RATE_LIMIT_ALGORITHMS,
  defaultAlgorithm: 'fixed-window',
  runs: 300,
  async create() {
    let now = 0;
    const backend = new MemoryBackend({ clock: () => now, sweepIntervalMs: 0 });
    return {
      backend,
      now: () => now,
      advance(ms: number) {
        now += ms;
      },
      async close() {
        backend.close();
      },
    };
  },
});

describeBackendProperties({
  name: 'MemoryBackend, clock from 2^40 ms + 0.5, sweep on every advance',
  algorithms: RATE_LIMIT_ALGORITHMS,
  runs: 150,
  async create() {
    let now = 2 ** 40 + 0.5;
    const backend = new MemoryBackend({ clock: () => now, sweepIntervalMs: 0 });
    return {
      backend,
      now: () => now,
      advance(ms: number) {
        now += ms;
        backend.sweep();
      },
      async close() {
        backend.close();
      },
    };
  },
});
