/**
 * The backend conformance suite and the property tests against {@link MemoryBackend}, every
 * algorithm, on an injected clock: once from time zero, once from a large clock origin with a
 * sweep after every step (a sweep must never change a decision).
 */
import { MemoryBackend } from '../../lib/backends/memory.backend.js';
import { RATE_LIMIT_ALGORITHMS } from '../../lib/rules/rule-units.js';
import { describeBackendConformance } from './backend-conformance.js';
import { describeBackendProperties } from './backend-properties.js';

/** A fresh `MemoryBackend` whose clock starts at `origin`, swept after every advance when asked. */
function memoryAt(origin: number, sweepOnAdvance: boolean) {
  return async () => {
    let now = origin;
    const backend = new MemoryBackend({ clock: () => now, sweepIntervalMs: 0 });
    return {
      backend,
      now: () => now,
      advance(ms: number) {
        now += ms;
        if (sweepOnAdvance) backend.sweep();
      },
      async close() {
        backend.close();
      },
    };
  };
}

for (const algorithm of RATE_LIMIT_ALGORITHMS) {
  // Fixed windows through the backend's default (queries name no algorithm), the others named.
  const namesAlgorithm = algorithm !== 'fixed-window';
  describeBackendConformance({
    name: 'memory',
    algorithm,
    namesAlgorithm,
    create: memoryAt(0, false),
  });
  describeBackendConformance({
    name: 'memory (clock from 2^40 ms, sweep on every advance)',
    algorithm,
    namesAlgorithm,
    create: memoryAt(2 ** 40, true),
  });
}

describeBackendProperties({
  name: 'MemoryBackend',
  algorithms: RATE_LIMIT_ALGORITHMS,
  defaultAlgorithm: 'fixed-window',
  runs: 500,
  create: memoryAt(0, false),
});

describeBackendProperties({
  name: 'MemoryBackend, clock from 2^40 ms + 0.5, sweep on every advance',
  algorithms: RATE_LIMIT_ALGORITHMS,
  runs: 200,
  create: memoryAt(2 ** 40 + 0.5, true),
});
