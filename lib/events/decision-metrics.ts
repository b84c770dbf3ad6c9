/**
 * OpenTelemetry metrics of the decisions (module option `metrics`): a counter of decided requests
 * by outcome and context type, and a histogram of how long the backend took. `@opentelemetry/api`
 * is an optional peer dependency: it is imported only when the metrics use the global
 * MeterProvider, and no type of it appears in this package's declarations (the meter is typed
 * structurally, as {@link MeterLike}), so applications without metrics need not install it.
 *
 * @module
 */
import { readFileSync } from 'node:fs';
import {
  describeValue,
  optionFailure,
  rejectUnknownKeys,
  type FailOption,
} from '../config-validation.js';
import { RATE_LIMIT_CONTEXT_TYPES } from '../http/context-type.js';
import { RATE_LIMIT_OUTCOMES, type RateLimitEvent } from './rate-limit-event.js';

/** The name of the meter taken from the global MeterProvider (its instrumentation scope). */
export const METRICS_METER_NAME = 'nestjs-ratelimit';

/** The counter of decided requests, with attributes `outcome` and `context_type`. */
export const DECISIONS_METRIC = 'ratelimit.decisions';

/** The histogram of backend call durations in milliseconds, with attribute `outcome`. */
export const BACKEND_DURATION_METRIC = 'ratelimit.backend.duration';

/**
 * Bucket boundaries (ms) the histogram suggests to the SDK. The SDK's default ones start at 5 ms,
 * where every call to a memory backend or a nearby Redis (microseconds to a millisecond or two)
 * would share the first bucket; these resolve that range and reach past the default backend
 * timeout (250 ms). A view configured in the application's MeterProvider overrides them.
 */
const BACKEND_DURATION_BUCKETS_MS: readonly number[] = Object.freeze([
  0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000,
]);

/** The attributes this module records: a few fixed values each, never a user, key or path. */
type MetricAttributes = Readonly<Record<string, string>>;

/** What an instrument is created with; a subset of OpenTelemetry's `MetricOptions`. */
interface InstrumentOptions {
  description?: string;
  unit?: string;
  advice?: { explicitBucketBoundaries?: number[] };
}

/**
 * The part of an OpenTelemetry `Meter` (from `@opentelemetry/api`) that the metrics use, as a
 * structural type so that this package's declarations do not depend on `@opentelemetry/api`.
 * Pass a real meter, for example `meterProvider.getMeter('my-app')`; any `Meter` satisfies it.
 */
export interface MeterLike {
  createCounter(name: string, options?: InstrumentOptions): CounterLike;
  createHistogram(name: string, options?: InstrumentOptions): HistogramLike;
}

/** An OpenTelemetry `Counter`, as far as the metrics use it. */
interface CounterLike {
  add(value: number, attributes?: MetricAttributes): void;
}

/** An OpenTelemetry `Histogram`, as far as the metrics use it. */
interface HistogramLike {
  record(value: number, attributes?: MetricAttributes): void;
}

/**
 * The object form of the module option `metrics` (`metrics: true` is the same as `{}`).
 *
 * @example
 * RateLimitModule.forRoot({ metrics: { meter: meterProvider.getMeter('my-app') } })
 */
export interface MetricsOptions {
  /**
   * The meter to create the instruments on.
   * @default metrics.getMeter('nestjs-ratelimit', <this package's version>) of `@opentelemetry/api`,
   * from the global MeterProvider, which must be registered before the application starts (a
   * meter taken before that records nothing, ever)
   */
  readonly meter?: MeterLike;
}

/** Records decided requests as OpenTelemetry metrics. */
export interface DecisionMetrics {
  /**
   * Adds the decision to `ratelimit.decisions` (attributes `outcome`, `context_type`) and, when a
   * backend was asked (`durationMs > 0`), its duration to `ratelimit.backend.duration`
   * (attribute `outcome`). A decision that asked no backend (the local reject cache, a cost or
   * limit function that failed) has `durationMs` 0 and is counted, but adds no duration, which
   * would only drag the backend's percentiles towards zero.
   *
   * Does not throw for a valid event, nor with the OpenTelemetry SDK's instruments (they report
   * their own problems through OpenTelemetry's diagnostics). A meter the application supplies
   * could still throw; call this where a failing listener cannot fail the request either.
   */
  record(event: RateLimitEvent): void;
}

/** What this module needs of the `@opentelemetry/api` module: the global metrics API. */
export interface OpenTelemetryMetricsApi {
  readonly metrics: { getMeter(name: string, version?: string): MeterLike };
}

// Only tsc sees the peer's types here (no value of it is imported statically): they check that the
// real module fits OpenTelemetryMetricsApi.
const importOpenTelemetryApi: () => Promise<OpenTelemetryMetricsApi> = () =>
  import('@opentelemetry/api');

const fail: FailOption = optionFailure('RateLimitModule');
const failInMetrics: FailOption = (option, problem) => fail(`metrics.${option}`, problem);
const METRICS_OPTION_NAMES: ReadonlySet<string> = new Set(['meter']);
const METRICS_OPTION_HINTS: Readonly<Record<string, string>> = {
  meterProvider: 'meter',
  provider: 'meter',
};

/**
 * Checks the module option `metrics` at start-up: `undefined`, `false`, `true` or
 * {@link MetricsOptions} with a meter-like `meter`.
 *
 * @throws RateLimitConfigError (`RATE_LIMIT_INVALID_OPTION`) naming the option and the fix
 */
export function assertValidMetricsOption(
  value: unknown,
): asserts value is boolean | MetricsOptions | undefined {
  if (value === undefined || typeof value === 'boolean') return;
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    fail('metrics', `expected true, false or { meter }, got ${describeValue(value)}.`);
  }
  rejectUnknownKeys(
    value,
    METRICS_OPTION_NAMES,
    METRICS_OPTION_HINTS,
    'a metrics option',
    failInMetrics,
  );
  const meter: unknown = Reflect.get(value, 'meter');
  if (meter === undefined || isMeterLike(meter)) return;
  const provider =
    typeof meter === 'object' &&
    meter !== null &&
    typeof Reflect.get(meter, 'getMeter') === 'function';
  failInMetrics(
    'meter',
    `expected an OpenTelemetry Meter, got ${describeValue(meter)}` +
      (provider ? `, which looks like a MeterProvider: pass provider.getMeter('my-app').` : '.'),
  );
}

function isMeterLike(value: unknown): value is MeterLike {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof Reflect.get(value, 'createCounter') === 'function' &&
    typeof Reflect.get(value, 'createHistogram') === 'function'
  );
}

/**
 * Creates the instruments once, at start-up, on the meter of `option` or, without one, on the
 * global MeterProvider's (importing `@opentelemetry/api` only then).
 *
 * @throws RateLimitConfigError when `option` is invalid (see {@link assertValidMetricsOption})
 * @throws Error when the global MeterProvider is needed and `@opentelemetry/api` is not installed
 */
export async function createDecisionMetrics(
  option: true | MetricsOptions,
): Promise<DecisionMetrics> {
  assertValidMetricsOption(option);
  const meter = (option === true ? undefined : option.meter) ?? (await globalMeter());
  return new OpenTelemetryDecisionMetrics(meter);
}

/**
 * The meter `nestjs-ratelimit` (at this package's version) of the global MeterProvider.
 * Exported for tests, which pass an `importApi` that fails as a missing package does.
 *
 * @throws Error when `importApi` fails, saying how to install `@opentelemetry/api`
 */
export async function globalMeter(
  importApi: () => Promise<OpenTelemetryMetricsApi> = importOpenTelemetryApi,
): Promise<MeterLike> {
  let api: OpenTelemetryMetricsApi;
  try {
    api = await importApi();
  } catch (cause) {
    throw new Error(
      'metrics: true needs the optional peer dependency @opentelemetry/api: run ' +
        '`npm install @opentelemetry/api` (or pass your own meter as metrics: { meter }).',
      { cause },
    );
  }
  return api.metrics.getMeter(METRICS_METER_NAME, packageVersion());
}

/**
 * This package's version, for the meter's instrumentation scope. Read from the package.json two
 * levels up, which is the package's own from lib/ and from dist/ alike. The version only labels
 * the scope: where an application bundles this package without its package.json, the meter goes
 * without one rather than the application failing to start.
 */
function packageVersion(): string | undefined {
  try {
    const manifest: unknown = JSON.parse(
      readFileSync(new URL('../../package.json', import.meta.url), 'utf8'),
    );
    const version: unknown =
      typeof manifest === 'object' && manifest !== null
        ? Reflect.get(manifest, 'version')
        : undefined;
    return typeof version === 'string' ? version : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Attribute objects by outcome and context type, made once so that recording allocates none.
 * Maps rather than plain objects, so that no value can reach a prototype's property.
 */
function decisionAttributeTable(): ReadonlyMap<string, ReadonlyMap<string, MetricAttributes>> {
  return new Map(
    RATE_LIMIT_OUTCOMES.map((outcome) => [
      outcome,
      new Map(
        RATE_LIMIT_CONTEXT_TYPES.map((contextType) => [
          contextType,
          Object.freeze({ outcome, context_type: contextType }),
        ]),
      ),
    ]),
  );
}

class OpenTelemetryDecisionMetrics implements DecisionMetrics {
  private readonly decisions: CounterLike;
  private readonly backendDuration: HistogramLike;
  private readonly decisionAttributes = decisionAttributeTable();
  private readonly durationAttributes: ReadonlyMap<string, MetricAttributes> = new Map(
    RATE_LIMIT_OUTCOMES.map((outcome) => [outcome, Object.freeze({ outcome })]),
  );

  constructor(meter: MeterLike) {
    this.decisions = meter.createCounter(DECISIONS_METRIC, {
      description: 'Requests decided by a rate-limit rule, by outcome and context type.',
    });
    this.backendDuration = meter.createHistogram(BACKEND_DURATION_METRIC, {
      description: 'How long the rate-limit backend took to decide a request.',
      unit: 'ms',
      advice: { explicitBucketBoundaries: [...BACKEND_DURATION_BUCKETS_MS] },
    });
  }

  record({ outcome, contextType, durationMs }: RateLimitEvent): void {
    // The prepared objects; one is built on the spot only for a value outside the known sets.
    const decided =
      this.decisionAttributes.get(outcome)?.get(contextType) ??
      ({ outcome, context_type: contextType } satisfies MetricAttributes);
    this.decisions.add(1, decided);
    // `> 0` also leaves out NaN and negative values, which no backend call measures.
    if (durationMs > 0) {
      this.backendDuration.record(durationMs, this.durationAttributes.get(outcome) ?? { outcome });
    }
  }
}
