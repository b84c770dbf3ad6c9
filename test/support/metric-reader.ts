import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';

/** A reader of the OpenTelemetry SDK that collects when the test asks (`collect()`), with no export timer. */
export class OnDemandReader extends MetricReader {
  protected override onForceFlush(): Promise<void> {
    return Promise.resolve();
  }

  protected override onShutdown(): Promise<void> {
    return Promise.resolve();
  }
}

/** A real SDK MeterProvider whose data points the test reads on demand. */
export function sdkProvider(): { provider: MeterProvider; reader: OnDemandReader } {
  const reader = new OnDemandReader();
  return { provider: new MeterProvider({ readers: [reader] }), reader };
}
