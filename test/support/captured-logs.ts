import { Logger, type LoggerService } from '@nestjs/common';

/** One line logged through Nest's `Logger`. */
export interface LogLine {
  level: 'log' | 'error' | 'warn' | 'debug' | 'verbose' | 'fatal';
  message: string;
  /** The logger's context: a `new Logger('RateLimit')` passes 'RateLimit' as the last argument. */
  context: unknown;
}

/**
 * Nest's log lines, kept instead of printed. Installed with `Logger.overrideLogger`, Nest's
 * documented way to replace the logger; call {@link captureLogs} after the app is created, since
 * creating an app with `logger: false` replaces the logger again.
 */
export class CapturedLogs implements LoggerService {
  readonly lines: LogLine[] = [];

  log(message: unknown, ...rest: unknown[]): void {
    this.keep('log', message, rest);
  }
  error(message: unknown, ...rest: unknown[]): void {
    this.keep('error', message, rest);
  }
  warn(message: unknown, ...rest: unknown[]): void {
    this.keep('warn', message, rest);
  }
  debug(message: unknown, ...rest: unknown[]): void {
    this.keep('debug', message, rest);
  }
  verbose(message: unknown, ...rest: unknown[]): void {
    this.keep('verbose', message, rest);
  }
  fatal(message: unknown, ...rest: unknown[]): void {
    this.keep('fatal', message, rest);
  }

  /** The messages of one level logged by this library (context 'RateLimit'). */
  ours(level: LogLine['level']): string[] {
    return this.lines
      .filter((line) => line.level === level && line.context === 'RateLimit')
      .map((line) => line.message);
  }

  private keep(level: LogLine['level'], message: unknown, rest: unknown[]): void {
    this.lines.push({ level, message: String(message), context: rest.at(-1) });
  }
}

/** Sends Nest's log lines to a new {@link CapturedLogs} until the logger is replaced again. */
export function captureLogs(): CapturedLogs {
  const logs = new CapturedLogs();
  Logger.overrideLogger(logs);
  return logs;
}
