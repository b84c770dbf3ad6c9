/**
 * The backend conformance suite and the property tests against {@link MemoryBackend}, every
 * algorithm, on an injected clock: once from time zero, once from a large clock origin with a
 * sweep after every step (a sweep must never change a decision).
 */
import { MemoryBackend } from '../../lib/backends/memory.backend.js';
import { RATE_LIMIT_ALGORITHMS } from '../../lib/rules/rule-units.js';
import { describeBackendConformance } from './backend-conformance.js';
import { describeBackendProperties } from './backend-properties.js';

for (const algorithm of RATE_LIMIT_ALGORITHMS) {
  // Fixed windows through the backend's default (queries name no algorithm), the others named.
  const namesAlgorithm = algorithm !== 'fixed-window';
  describeBackendConformance({
    name: 'memory',
    algorithm,
    namesAlgorithm,
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

  describeBackendConformance({
    name: 'memory (clock from 2^40 ms, sweep on every advance)',
    algorithm,
    namesAlgorithm,
    async create() {
      let now = 2 ** 40;
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
}

describeBackendProperties({
  name: 'MemoryBackend',
  algorithms: RATE_LIMIT_ALGORITHMS,
  defaultAlgorithm: 'fixed-window',
  runs: 500,
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
  runs: 200,
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
