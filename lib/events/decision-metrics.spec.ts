import { readFileSync } from 'node:fs';
import { metrics, type Meter } from '@opentelemetry/api';
import {
  DataPointType,
  type DataPoint,
  type Histogram,
  type MetricData,
} from '@opentelemetry/sdk-metrics';
import { RateLimitConfigError } from '../rate-limit-config.error.js';
import { Rule } from '../rules/rule.js';
import type { RateLimitContextType } from '../http/context-type.js';
import {
  BACKEND_DURATION_METRIC,
  DECISIONS_METRIC,
  METRICS_METER_NAME,
  assertValidMetricsOption,
  createDecisionMetrics,
  globalMeter,
  type MeterLike,
} from './decision-metrics.js';
import { sdkProvider, type OnDemandReader } from '../../test/support/metric-reader.js';
import type { RateLimitEvent, RateLimitOutcome } from './rate-limit-event.js';

const RULE = new Rule({ minute: 5 });

/** A decided request: user and path values that must never show up as attributes. */
function decision(
  outcome: RateLimitOutcome,
  contextType: RateLimitContextType,
  durationMs: number,
): RateLimitEvent {
  return {
    outcome,
    contextType,
    durationMs,
    rule: RULE,
    counter: { user: 'user-42', scope: 'path:/orders/42', method: 'GET' },
    identity: { user: 'user-42', group: 'default' },
    retryAfterMs: outcome === 'rejected' || outcome === 'shadow-rejected' ? 12_000 : 0,
  };
}

/** Every metric the reader collected, by name; fails on collection errors. */
async function collected(reader: OnDemandReader): Promise<Map<string, MetricData>> {
  const { resourceMetrics, errors } = await reader.collect();
  expect(errors).toEqual([]);
  const byName = new Map<string, MetricData>();
  for (const scope of resourceMetrics.scopeMetrics) {
    for (const metric of scope.metrics) byName.set(metric.descriptor.name, metric);
  }
  return byName;
}

/** The counter's points as `outcome/context_type → value`. */
function counterValues(metric: MetricData | undefined): Record<string, number> {
  expect(metric?.dataPointType).toBe(DataPointType.SUM);
  const points = (metric?.dataPoints ?? []) as DataPoint<number>[];
  return Object.fromEntries(
    points.map(({ attributes, value }) => [
      `${String(attributes.outcome)}/${String(attributes.context_type)}`,
      value,
    ]),
  );
}

/** The histogram's points as `outcome → { count, sum }`. */
function histogramValues(
  metric: MetricData | undefined,
): Record<string, { count: number; sum: number | undefined }> {
  expect(metric?.dataPointType).toBe(DataPointType.HISTOGRAM);
  const points = (metric?.dataPoints ?? []) as DataPoint<Histogram>[];
  return Object.fromEntries(
    points.map(({ attributes, value }) => [
      String(attributes.outcome),
      { count: value.count, sum: value.sum },
    ]),
  );
}

describe('createDecisionMetrics with a meter passed in', () => {
  it('counts decisions by outcome and context type, and backend durations by outcome', async () => {
    const { provider, reader } = sdkProvider();
    const decisions = await createDecisionMetrics({ meter: provider.getMeter('app') });

    decisions.record(decision('allowed', 'http', 1.5));
    decisions.record(decision('allowed', 'http', 2.5));
    decisions.record(decision('allowed', 'graphql', 0.25));
    decisions.record(decision('rejected', 'http', 0.75));
    // Rejected by the local reject cache: no backend was asked.
    decisions.record(decision('rejected', 'ws', 0));
    decisions.record(decision('shadow-rejected', 'rpc', 3));
    // A backend that timed out, and a cost function that failed before any backend call.
    decisions.record(decision('backend-error', 'http', 250));
    decisions.record(decision('backend-error', 'http', 0));

    const byName = await collected(reader);
    expect([...byName.keys()].sort()).toEqual([BACKEND_DURATION_METRIC, DECISIONS_METRIC]);
    expect(counterValues(byName.get(DECISIONS_METRIC))).toEqual({
      'allowed/http': 2,
      'allowed/graphql': 1,
      'rejected/http': 1,
      'rejected/ws': 1,
      'shadow-rejected/rpc': 1,
      'backend-error/http': 2,
    });
    // The two decisions without a backend call (durationMs 0) are counted above, not timed.
    expect(histogramValues(byName.get(BACKEND_DURATION_METRIC))).toEqual({
      allowed: { count: 3, sum: 4.25 },
      rejected: { count: 1, sum: 0.75 },
      'shadow-rejected': { count: 1, sum: 3 },
      'backend-error': { count: 1, sum: 250 },
    });
    await provider.shutdown();
  });

  it('records only the low-cardinality attributes, never the user, counter or path', async () => {
    const { provider, reader } = sdkProvider();
    const decisions = await createDecisionMetrics({ meter: provider.getMeter('app') });
    decisions.record(decision('rejected', 'graphql', 1));

    const byName = await collected(reader);
    expect(byName.get(DECISIONS_METRIC)?.dataPoints.map(({ attributes }) => attributes)).toEqual([
      { outcome: 'rejected', context_type: 'graphql' },
    ]);
    expect(
      byName.get(BACKEND_DURATION_METRIC)?.dataPoints.map(({ attributes }) => attributes),
    ).toEqual([{ outcome: 'rejected' }]);
    await provider.shutdown();
  });

  it('describes the instruments: a monotonic counter, and a histogram in ms with fine buckets', async () => {
    const { provider, reader } = sdkProvider();
    const decisions = await createDecisionMetrics({ meter: provider.getMeter('app') });
    decisions.record(decision('allowed', 'http', 0.07));

    const byName = await collected(reader);
    const counter = byName.get(DECISIONS_METRIC);
    expect(counter?.dataPointType === DataPointType.SUM && counter.isMonotonic).toBe(true);
    expect(counter?.descriptor.description).toMatch(/by outcome and context type/);
    const histogram = byName.get(BACKEND_DURATION_METRIC);
    expect(histogram?.descriptor.unit).toBe('ms');
    const [point] = (histogram?.dataPoints ?? []) as DataPoint<Histogram>[];
    // The suggested boundaries reach the SDK: 0.07 ms falls in (0.05, 0.1].
    expect(point?.value.buckets.boundaries).toEqual([
      0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000,
    ]);
    expect(point?.value.buckets.counts.slice(0, 3)).toEqual([0, 1, 0]);
    await provider.shutdown();
  });

  it('hands the meter one prepared attribute object per outcome and context type', async () => {
    // A meter of the application's own (MeterLike is public): it keeps what it is given.
    const given: { instrument: string; attributes: object | undefined }[] = [];
    const meter: MeterLike = {
      createCounter: () => ({
        add: (_value, attributes) => given.push({ instrument: 'counter', attributes }),
      }),
      createHistogram: () => ({
        record: (_value, attributes) => given.push({ instrument: 'histogram', attributes }),
      }),
    };
    const decisions = await createDecisionMetrics({ meter });
    decisions.record(decision('allowed', 'http', 1));
    decisions.record(decision('allowed', 'http', 2));
    decisions.record(decision('allowed', 'ws', 3));

    const [first, firstTime, second, secondTime, third, thirdTime] = given;
    expect(given.map(({ instrument }) => instrument)).toEqual([
      'counter',
      'histogram',
      'counter',
      'histogram',
      'counter',
      'histogram',
    ]);
    // The same objects again for the same pair, not equal copies; frozen, so no meter alters them.
    expect(second?.attributes).toBe(first?.attributes);
    expect(secondTime?.attributes).toBe(firstTime?.attributes);
    expect(thirdTime?.attributes).toBe(firstTime?.attributes);
    expect(third?.attributes).toEqual({ outcome: 'allowed', context_type: 'ws' });
    expect(third?.attributes).not.toBe(first?.attributes);
    expect(Object.isFrozen(first?.attributes)).toBe(true);
    expect(Object.isFrozen(firstTime?.attributes)).toBe(true);
  });

  it('accepts any @opentelemetry/api Meter as a MeterLike', () => {
    // A compile-time check (npm run typecheck): the structural type fits the real one.
    const meter: Meter = metrics.getMeter('typecheck');
    const like: MeterLike = meter;
    expect(typeof like.createCounter).toBe('function');
  });
});

describe('createDecisionMetrics with the global MeterProvider', () => {
  afterEach(() => metrics.disable());

  it.each([
    ['metrics: true', true as const],
    ['metrics: {}', {}],
  ])('uses the meter nestjs-ratelimit at the package version for %s', async (_name, option) => {
    const { provider, reader } = sdkProvider();
    expect(metrics.setGlobalMeterProvider(provider)).toBe(true);
    const decisions = await createDecisionMetrics(option);
    decisions.record(decision('allowed', 'http', 2));
    decisions.record(decision('shadow-rejected', 'http', 4));

    const { resourceMetrics } = await reader.collect();
    const version: unknown = JSON.parse(
      readFileSync(new URL('../../package.json', import.meta.url), 'utf8'),
    ).version;
    expect(resourceMetrics.scopeMetrics.map(({ scope }) => [scope.name, scope.version])).toEqual([
      [METRICS_METER_NAME, version],
    ]);
    const byName = await collected(reader);
    expect(counterValues(byName.get(DECISIONS_METRIC))).toEqual({
      'allowed/http': 1,
      'shadow-rejected/http': 1,
    });
    expect(histogramValues(byName.get(BACKEND_DURATION_METRIC))).toEqual({
      allowed: { count: 1, sum: 2 },
      'shadow-rejected': { count: 1, sum: 4 },
    });
    await provider.shutdown();
  });

  it('fails with how to install @opentelemetry/api when it cannot be imported', async () => {
    // A real failing import, as when the package is not installed.
    const missing: string = 'nestjs-ratelimit-no-such-package';
    const failure = globalMeter(() => import(missing));
    await expect(failure).rejects.toThrow(
      'metrics: true needs the optional peer dependency @opentelemetry/api: run ' +
        '`npm install @opentelemetry/api` (or pass your own meter as metrics: { meter }).',
    );
    await expect(failure).rejects.toHaveProperty('cause.message', expect.stringContaining(missing));
  });

  it('does not import @opentelemetry/api statically (it is an optional peer dependency)', () => {
    const source = readFileSync(new URL('./decision-metrics.ts', import.meta.url), 'utf8');
    expect(source).not.toMatch(/^\s*import\s(?!type\s)[^;]*from\s+['"]@opentelemetry\//m);
    expect(source).toContain("import('@opentelemetry/api')");
  });
});

describe('assertValidMetricsOption', () => {
  const { provider } = sdkProvider();
  const meter = provider.getMeter('app');

  it.each([undefined, true, false, {}, { meter }])('accepts %p', (value) => {
    expect(() => assertValidMetricsOption(value)).not.toThrow();
  });

  it.each([
    [
      'yes',
      'Invalid RateLimitModule option "metrics": expected true, false or { meter }, got "yes".',
    ],
    [
      null,
      'Invalid RateLimitModule option "metrics": expected true, false or { meter }, got null.',
    ],
    [
      { metre: meter },
      'Invalid RateLimitModule option "metrics.metre": is not a metrics option; did you mean "meter"?',
    ],
    [
      { meter: provider },
      'Invalid RateLimitModule option "metrics.meter": expected an OpenTelemetry Meter, got an ' +
        "object, which looks like a MeterProvider: pass provider.getMeter('my-app').",
    ],
    [
      { meter: 'app' },
      'Invalid RateLimitModule option "metrics.meter": expected an OpenTelemetry Meter, got "app".',
    ],
  ])('rejects %p with a message naming the option', (value, message) => {
    expect(() => assertValidMetricsOption(value)).toThrow(RateLimitConfigError);
    expect(() => assertValidMetricsOption(value)).toThrow(message);
  });

  it('is applied by createDecisionMetrics', async () => {
    await expect(
      createDecisionMetrics({ meter: provider } as unknown as { meter: MeterLike }),
    ).rejects.toThrow(/looks like a MeterProvider/);
  });
});
