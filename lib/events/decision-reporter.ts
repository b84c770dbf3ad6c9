import { Logger } from '@nestjs/common';
import { errorText } from '../internal/error-text.js';
import type { RateLimitEvent } from './rate-limit-event.js';

/** Something that records decisions, such as the OpenTelemetry instruments. */
export interface DecisionSink {
  record(event: RateLimitEvent): void;
}

/** How often a failing listener is logged at most. */
const LOG_INTERVAL_MS = 60_000;

/**
 * Hands every decided request to the `onDecision` listener and the metrics. Nothing here can fail
 * or delay a request: a listener that throws, or returns a promise that rejects, is logged at most
 * once a minute (with how many failures that minute hid), and its promise is never awaited.
 */
export class DecisionReporter {
  private readonly logger = new Logger('RateLimit');
  private readonly sinks: DecisionSink[] = [];
  private nextLogAt = 0;
  private hidden = 0;

  constructor(listener: ((event: RateLimitEvent) => unknown) | undefined) {
    if (listener !== undefined) this.sinks.push({ record: listener });
  }

  /** True when someone listens: only then are events built and backend calls timed. */
  get active(): boolean {
    return this.sinks.length !== 0;
  }

  /** Adds a sink before the others (the metrics, created when the module starts). */
  addFirst(sink: DecisionSink): void {
    this.sinks.unshift(sink);
  }

  report(event: RateLimitEvent): void {
    for (const sink of this.sinks) {
      try {
        const returned: unknown = sink.record(event);
        if (returned instanceof Promise) returned.catch((error: unknown) => this.failed(error));
      } catch (error) {
        this.failed(error);
      }
    }
  }

  private failed(error: unknown): void {
    const now = Date.now();
    if (now < this.nextLogAt) {
      this.hidden++;
      return;
    }
    const more = this.hidden === 0 ? '' : ` (and ${this.hidden} more failures in the last minute)`;
    this.nextLogAt = now + LOG_INTERVAL_MS;
    this.hidden = 0;
    this.logger.error(
      `A rate-limit decision listener (onDecision, or the metrics) failed (${errorText(error)})` +
        `${more}; requests are decided as usual. Catch errors inside the listener.`,
    );
  }
}
