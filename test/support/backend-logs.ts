import { jest } from '@jest/globals';
import { Logger } from '@nestjs/common';

/** This library's log lines about its backend, captured instead of printed. */
export interface BackendLogs {
  /** `warn` lines about the backend since the last {@link BackendLogs.clear}. */
  warnings(): string[];
  /** `log` lines about the backend since the last {@link BackendLogs.clear}. */
  infos(): string[];
  clear(): void;
  restore(): void;
}

/**
 * Silences Nest's Logger and keeps the failure policy's lines (outage started, backend back).
 * Nest logs through the same Logger class, so only lines about the rate-limit backend are kept.
 */
export function captureBackendLogs(): BackendLogs {
  const warnSpy = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
  const logSpy = jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
  const ours = (spy: typeof warnSpy): string[] =>
    spy.mock.calls
      .map(([message]) => String(message))
      .filter((message) => message.includes('rate-limit backend'));
  return {
    warnings: () => ours(warnSpy),
    infos: () => ours(logSpy),
    clear: () => {
      warnSpy.mockClear();
      logSpy.mockClear();
    },
    restore: () => {
      warnSpy.mockRestore();
      logSpy.mockRestore();
    },
  };
}
