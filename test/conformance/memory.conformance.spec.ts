/**
 * The backend conformance suite against {@link MemoryBackend} (a fixed window), on an injected
 * clock: once from time zero, once from a large clock origin with a sweep after every step (a
 * sweep must never change a decision).
 */
import { MemoryBackend } from '../../lib/backends/memory.backend.js';
import { describeBackendConformance } from './backend-conformance.js';

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
