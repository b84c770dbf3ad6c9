import {
  Inject,
  Injectable,
  Logger,
  Optional,
  type ExecutionContext,
  type OnApplicationShutdown,
  type OnModuleInit,
  type Type,
} from '@nestjs/common';
import {
  ApplicationConfig,
  DiscoveryService,
  HttpAdapterHost,
  MetadataScanner,
  ModuleRef,
  Reflector,
} from '@nestjs/core';
import type { AuthResolver } from './auth/auth-resolver.js';
import {
  compileAuthenticate,
  normalizeIdentity,
  type Authenticator,
  type ResolvedIdentity,
} from './auth/authenticate.js';
import type { RateLimitRequest } from './auth/identity.js';
import { IpAuthResolver } from './auth/ip.auth-resolver.js';
import {
  RateLimitBackend,
  type ConsumeQuery,
  type ConsumeResult,
  type RateLimitCounter,
} from './backends/rate-limit.backend.js';
import { LocalRejectCache } from './backends/local-reject-cache.js';
import { RedisBackend } from './backends/redis/redis.backend.js';
import {
  BackendFailureHandler,
  isFailureOutcome,
  type FailureOutcome,
} from './backends/failure-policy.js';
import { createDecisionMetrics } from './events/decision-metrics.js';
import { DecisionReporter } from './events/decision-reporter.js';
import type { RateLimitEvent, RateLimitOutcome } from './events/rate-limit-event.js';
import type { ContextReader } from './http/contexts/context-edge.js';
import type { RateLimitContextType } from './http/context-type.js';
import { RateLimitEdge } from './http/rate-limit-edge.js';
import { DEFAULT_ROUTING, RequestPaths, type PathRouting } from './http/request-path.js';
import { patternsUnderPrefix, readRouterSettings } from './http/router-settings.js';
import { andThen, type MaybePromise } from './internal/maybe-promise.js';
import { settleAfterHandler } from './counting/pending-settlements.js';
import { rememberState, stateDecoratorUsed } from './decorators/rate-limit-state.decorator.js';
import {
  RATE_LIMIT_OPTIONS,
  RATE_LIMIT_RULES,
  RATE_LIMIT_SKIP,
  RATE_LIMIT_STATE,
} from './rate-limit.constants.js';

import type { RateLimitModuleOptions } from './rate-limit.options.js';
import { describeValue } from './config-validation.js';
import { errorText } from './internal/error-text.js';
import { assertBackendSupports } from './rules/backend-support.js';
import { LimitProblem, resolveLimits } from './rules/dynamic-limits.js';
import type { CostFunction, Rule } from './rules/rule.js';
import type { UnitLimit } from './rules/rule-units.js';
import { decoratedRules, tableRules, type LocatedRule } from './rules/rule-sources.js';
import { RuleTable, type PatternRules } from './rules/rule-table.js';

/** The outcome for a request that a limited rule applied to. */
export type RateLimitDecision =
  | {
      /** The backend decided (or the local reject cache answered for it). */
      readonly kind: 'decided';
      /**
       * True when the request goes through: admitted and counted, or over its limit under a
       * shadow rule (`outcome: 'shadow-rejected'`, nothing counted).
       */
      readonly allowed: boolean;
      readonly outcome: Exclude<RateLimitOutcome, 'backend-error'>;
      readonly rule: Rule;
      readonly identity: ResolvedIdentity;
      readonly counter: RateLimitCounter;
      /** What the backend was asked, with the limits of this request (a unit function's too). */
      readonly query: ConsumeQuery;
      readonly result: ConsumeResult;
    }
  | {
      /** The backend failed and `failurePolicy: 'closed'` rejects the request (a 503). */
      readonly kind: 'unavailable';
      readonly allowed: false;
      readonly outcome: 'backend-error';
      readonly rule: Rule;
      readonly identity: ResolvedIdentity;
      readonly counter: RateLimitCounter;
    };

/** What `check` has read of one call, for `decide`. */
interface Call {
  readonly reader: ContextReader;
  /** What the auth resolver read (the HTTP request, a message's data...), for cost functions. */
  readonly request: unknown;
  readonly httpRequest: object | undefined;
  readonly plan: HandlerPlan;
  readonly rows: readonly PatternRules[];
  /** The canonical path the table was matched against (`''` without a table). */
  readonly path: string;
  readonly context: ExecutionContext;
}

/** Decorator rules of one handler, resolved once: the handler's list first, then the class's. */
interface HandlerPlan {
  readonly skip: boolean;
  /** The handler reads its decision with `@RateLimitState()`. */
  readonly wantsState: boolean;
  readonly lists: readonly (readonly Rule[])[];
  /** Counter scope of decorator rules without a zone. */
  readonly scope: string;
}

/** What `identify` gives when `onAuthError` let the caller through unlimited. */
const UNLIMITED = null;

/** Remembered for a request that no limited rule applied to (`check` returned `undefined`). */
const NOT_LIMITED = Symbol('not limited');

/** A request's decision as remembered: the value (or promise) `check` returned. */
type RememberedDecision = RateLimitDecision | Promise<RateLimitDecision | undefined>;

/**
 * Where `check` remembers its decision on the execution context. Nest runs all the guards of one
 * request (global, controller and handler guards) with one context, so a `RateLimitGuard` that is
 * both global and in `@UseGuards` decides, and counts, the request once. The context rather than
 * the request: it is a small object with a fixed shape, so the property costs next to nothing,
 * where a `WeakMap` entry or a new property on Express's request measurably slowed every request.
 */
const DECISION = Symbol('nestjs-ratelimit:decision');
type DecisionMemo = Record<typeof DECISION, RememberedDecision | typeof NOT_LIMITED | undefined>;

const NO_ROWS: readonly PatternRules[] = Object.freeze([]);

/** The method of a call without an HTTP request (WebSocket, RPC): only `method: '*'` rules apply. */
const NO_METHOD = '';

/** Request methods as Node's parser spells them: already upper case, no conversion needed. */
const UPPER_CASE_METHODS: ReadonlySet<string> = new Set([
  'GET',
  'HEAD',
  'POST',
  'PUT',
  'PATCH',
  'DELETE',
  'OPTIONS',
]);

/**
 * Decides requests: which rule applies (SPEC 2.3), who the caller is (resolved at most once per
 * request, and only when some rule could apply; see {@link check}), and what the backend says.
 * Free of HTTP response concerns, so the guard stays thin and this can be used on its own (e.g.
 * in a custom guard).
 */
@Injectable()
export class RateLimitService implements OnModuleInit, OnApplicationShutdown {
  /** The table as compiled, matching letter case exactly. */
  private readonly compiledTable: RuleTable;
  /** The same table matching regardless of case, for a router that ignores it (the default). */
  private readonly caseFoldedTable: RuleTable;
  /** The table as the router reads paths: one of the two above. */
  private table: RuleTable;
  /** How request paths are read: set from the router's settings when the module starts. */
  private paths = new RequestPaths(DEFAULT_ROUTING);
  private readonly failures: BackendFailureHandler;
  private readonly plans = new WeakMap<object, HandlerPlan>();
  private authenticator: Authenticator | undefined;
  /** Where each rule was written, for the warnings of request time. */
  private readonly ruleLocations = new WeakMap<Rule, string>();
  /** Rules whose cost function failed and has not returned a good value since. */
  private readonly failingCosts = new WeakSet<Rule>();
  /** Rules whose limit functions failed and have not given good limits since. */
  private readonly failingLimits = new WeakSet<Rule>();
  /** `onDecision` and the metrics. */
  readonly reporter: DecisionReporter;
  /** The hot-key shortcut (`localRejectCache`), when on; `RateLimitAdmin` clears it. */
  readonly rejectCache: LocalRejectCache | undefined;
  /**
   * Rules the cache must not answer: a `count` rule's counter gets capacity back (on any
   * instance) before a rejection's time, and so does a zone such a rule shares.
   */
  private uncached: ReadonlySet<Rule> = new Set();
  /** Every rule of the table and the decorators, once the module started. */
  private located: readonly LocatedRule[] = [];
  /** The rules of the table. */
  private tableRuleSet: ReadonlySet<Rule> = new Set();
  /** Decisions {@link admitted} has handled, so a second guard of the same call does nothing. */
  private readonly admittedDecisions = new WeakSet<RateLimitDecision>();
  private readonly logger = new Logger('RateLimit');
  /**
   * Table decisions of GraphQL calls, per HTTP request: a table rule counts an HTTP request once,
   * however many resolver calls it carries (SPEC 5).
   */
  private readonly perHttpRequest = new WeakMap<object, RememberedDecision | typeof NOT_LIMITED>();

  constructor(
    @Inject(RATE_LIMIT_OPTIONS) private readonly options: RateLimitModuleOptions,
    private readonly backend: RateLimitBackend,
    private readonly reflector: Reflector,
    private readonly moduleRef: ModuleRef,
    /** The transports: how each kind of call is read, and the HTTP adapter's platform. */
    readonly edge: RateLimitEdge,
    private readonly discovery: DiscoveryService,
    private readonly scanner: MetadataScanner,
    @Optional() private readonly adapterHost?: HttpAdapterHost,
    @Optional() @Inject(ApplicationConfig) private readonly appConfig?: ApplicationConfig,
  ) {
    // Compiled here so a bad table stops the application from starting.
    this.compiledTable = RuleTable.compile(options.config);
    this.caseFoldedTable = this.compiledTable.ignoringCase();
    this.table = this.caseFoldedTable;
    this.failures = new BackendFailureHandler(backend, options);
    this.reporter = new DecisionReporter(options.onDecision);
    this.rejectCache = rejectCacheFor(backend, options.localRejectCache);
  }

  async onModuleInit(): Promise<void> {
    this.checkRules();
    // The instruments come before every listener of the user's, so a throwing one skips none.
    const { metrics } = this.options;
    if (metrics) this.reporter.addFirst(await createDecisionMetrics(metrics));
    this.useRouting(readRouterSettings(this.adapterHost, this.appConfig));
    this.authenticator = await compileAuthenticate(
      this.options.authenticate ?? new IpAuthResolver(),
      (type) => this.createResolver(type),
    );
  }

  /**
   * Checks every rule of the table and of `@RateLimit()` decorators against the backend (and the
   * fallback backend), so that a rule the backend cannot count stops the start-up rather than
   * failing its first request.
   * @throws RateLimitConfigError naming the rule, the backend and the fix
   */
  private checkRules(): void {
    const fromTable = tableRules(this.compiledTable);
    const rules: LocatedRule[] = [
      ...fromTable,
      ...decoratedRules(this.discovery, this.scanner, this.reflector),
    ];
    assertBackendSupports(rules, this.backend, this.failures.fallbackBackend);
    this.located = rules;
    this.tableRuleSet = new Set(fromTable.map(({ rule }) => rule));
    const countedZones = new Set(
      rules.filter(({ rule }) => rule.count !== 'all').map(({ rule }) => rule.zone),
    );
    this.uncached = new Set(
      rules
        .map(({ rule }) => rule)
        .filter(
          (rule) =>
            rule.count !== 'all' || (rule.zone !== undefined && countedZones.has(rule.zone)),
        ),
    );
    for (const { rule, where } of rules) {
      if (!this.ruleLocations.has(rule)) this.ruleLocations.set(rule, where);
      if (rule.unlimited) continue; // never reaches a backend
      // Checked: a backend written against an earlier release, or one that implements the
      // class rather than extending it, may not have the method.
      for (const store of [this.backend, this.failures.fallbackBackend]) {
        if (typeof store?.knowUnits === 'function') store.knowUnits(rule.limits);
      }
    }
  }

  /**
   * The rules that count under `counter` (its scope and method), in the order a request picks
   * them: for a handler its own decorators, then its class's; for a path the matching table
   * rows; for a zone every rule of the zone. Callers pick the one for a group.
   */
  rulesCountingUnder(counter: RateLimitCounter): Rule[] {
    const { scope, method } = counter;
    const sameMethod = (rule: Rule): boolean => rule.method === method && !rule.unlimited;
    if (scope.startsWith('zone:')) {
      const zone = scope.slice('zone:'.length);
      return this.located
        .map(({ rule }) => rule)
        .filter((rule) => rule.zone === zone && sameMethod(rule));
    }
    if (scope.startsWith('path:')) {
      const path = scope.slice('path:'.length);
      return this.table
        .matching(path)
        .flatMap((row) => row.rules)
        .filter((rule) => rule.zone === undefined && sameMethod(rule));
    }
    const handler = scope.startsWith('handler:') ? scope.slice('handler:'.length) : undefined;
    const owner = handler?.slice(0, handler.lastIndexOf('.'));
    const on = (name: string | undefined): Rule[] =>
      this.located
        .filter((located) => located.on === name && located.rule.zone === undefined)
        .map(({ rule }) => rule)
        .filter(sameMethod);
    return handler === undefined ? [] : [...on(handler), ...on(owner)];
  }

  /** Reads paths, and matches patterns, the way the router with `routing` does. */
  private useRouting(routing: PathRouting): void {
    this.paths = new RequestPaths(routing);
    this.table = routing.caseSensitive ? this.compiledTable : this.caseFoldedTable;
    for (const source of patternsUnderPrefix(this.compiledTable.entries, routing)) {
      new Logger('RateLimit').warn(
        `Rate-limit pattern ${JSON.stringify(source)} starts with the global prefix ` +
          `"${routing.prefix}", but patterns are matched against the path without it (as the ` +
          `paths of Nest's forRoutes() are): drop the prefix from the pattern.`,
      );
    }
  }

  async onApplicationShutdown(): Promise<void> {
    await this.backend.close();
    await this.failures.close();
  }

  /**
   * Decides the call of `context` (an HTTP request, a GraphQL resolver call, a WebSocket or
   * microservice message): a decision, or `undefined` when no limited rule applies (a context
   * type left out of `contexts`, skipped, no candidate, no rule for the caller's group and method,
   * an unlimited rule, or a failing backend under `failurePolicy: 'open'`). Returns a plain value
   * when every step is synchronous (memory backend, synchronous resolver) and a promise otherwise.
   *
   * A context is decided once: calling `check` again with the same context (as Nest does for
   * every guard of one request) returns the first decision, or the same promise, without counting
   * the request again or resolving its caller twice.
   * @throws whatever `authenticate` / `onAuthError` throw (`EmptyInformation` is a 401)
   */
  check(context: ExecutionContext): MaybePromise<RateLimitDecision | undefined> {
    if (this.options.enabled === false) return undefined;
    const reader = this.edge.readerOf(context);
    if (reader === undefined) return undefined;
    const plan = this.planFor(context);
    if (plan.skip) return undefined;
    const memo = context as unknown as DecisionMemo;
    const remembered = memo[DECISION];
    if (remembered !== undefined) return remembered === NOT_LIMITED ? undefined : remembered;
    const { skip } = this.options;
    // SPEC 7: `skip` comes before the caller is identified; a skipped call is not decided.
    const decision =
      skip === undefined
        ? this.checkCall(context, reader, plan)
        : andThen(skip(context), (skipped) =>
            skipped ? undefined : this.checkCall(context, reader, plan),
          );
    memo[DECISION] = decision ?? NOT_LIMITED;
    return decision;
  }

  /** `check` for a call that is limited by type, not skipped, and not decided yet. */
  private checkCall(
    context: ExecutionContext,
    reader: ContextReader,
    plan: HandlerPlan,
  ): MaybePromise<RateLimitDecision | undefined> {
    const httpRequest = reader.httpRequest(context);
    let path = '';
    let rows = NO_ROWS;
    // The table applies to HTTP paths: of an HTTP request, or of the one a GraphQL call came in.
    if (!this.table.isEmpty && httpRequest !== undefined) {
      const forms = this.paths.ofTarget(this.edge.platform.target(httpRequest));
      path = forms.canonical;
      rows = this.table.matching(path, forms.routed);
    }
    if (plan.lists.length === 0 && rows.length === 0) return undefined;
    const request = reader.authRequest(context);
    const call: Call = { reader, request, httpRequest, plan, rows, path, context };
    // Not andThen: a closure per request, on the path every decision takes.
    const identity = this.identify(request, context);
    if (identity instanceof Promise) return identity.then((known) => this.decideFor(call, known));
    return this.decideFor(call, identity);
  }

  /** {@link decide} for an identified caller; nothing for one `onAuthError` let through. */
  private decideFor(
    call: Call,
    identity: ResolvedIdentity | typeof UNLIMITED,
  ): MaybePromise<RateLimitDecision | undefined> {
    return identity === UNLIMITED ? undefined : this.decide(call, identity);
  }

  /** Picks the rule for an identified caller and asks the backend. */
  private decide(
    call: Call,
    identity: ResolvedIdentity,
  ): MaybePromise<RateLimitDecision | undefined> {
    const { httpRequest, plan, rows, path } = call;
    const method =
      httpRequest === undefined
        ? NO_METHOD
        : upperCaseMethod(this.edge.platform.method(httpRequest));
    const { group } = identity;
    // SPEC 2.3 step 4: the first rule for the caller's group and method, in the first candidate
    // list that has one: the handler's decorators, the class's, then the matching table rows.
    let rule: Rule | undefined;
    let scope = plan.scope;
    for (const rules of plan.lists) {
      rule = firstRuleFor(rules, group, method);
      if (rule !== undefined) break;
    }
    if (rule === undefined) {
      for (const row of rows) {
        rule = firstRuleFor(row.rules, group, method);
        if (rule !== undefined) {
          scope = `path:${path}`;
          break;
        }
      }
      // A table rule counts a GraphQL HTTP request once: its other resolver calls share the
      // first call's decision.
      if (rule !== undefined && call.reader.type === 'graphql' && httpRequest !== undefined) {
        const shared = this.perHttpRequest.get(httpRequest);
        if (shared !== undefined) return shared === NOT_LIMITED ? undefined : shared;
        const decision = this.consume(rule, scope, identity, call);
        this.perHttpRequest.set(httpRequest, decision ?? NOT_LIMITED);
        return decision;
      }
    }
    return this.consume(rule, scope, identity, call);
  }

  /**
   * Asks the backend about `rule` for the caller (nothing to ask for an unlimited rule). A rule
   * whose cost or limit function fails is decided by the failure policy, as if the backend had
   * failed.
   */
  private consume(
    rule: Rule | undefined,
    scope: string,
    identity: ResolvedIdentity,
    call: Call,
  ): MaybePromise<RateLimitDecision | undefined> {
    if (rule === undefined || rule.unlimited) return undefined;
    const counter: RateLimitCounter = {
      user: identity.user,
      scope: rule.zone === undefined ? scope : `zone:${rule.zone}`,
      method: rule.method,
    };
    const functions = rule.limitFunctions;
    if (functions === undefined) return this.ask(rule, rule.limits, counter, identity, call);
    const algorithm = rule.algorithm ?? this.backend.algorithm;
    return andThen(
      resolveLimits(rule, functions, identity, call.context, algorithm),
      (limits): MaybePromise<RateLimitDecision | undefined> => {
        if (!(limits instanceof LimitProblem)) {
          this.failingLimits.delete(rule);
          return this.ask(rule, limits, counter, identity, call);
        }
        this.warnOnce(
          this.failingLimits,
          rule,
          limits.subject,
          limits.problem,
          'give a whole number of requests, 0 or more, that the algorithm can count exactly',
        );
        // There is no limit to count against, so even the fallback backend cannot decide it.
        const outcome = this.failures.withoutLimits();
        this.reportFailure(rule, counter, identity, call, 0);
        return outcome.kind === 'open' ? undefined : unavailable(rule, identity, counter);
      },
    );
  }

  /** Puts one request of `rule`, with this request's `limits`, to the backend. */
  private ask(
    rule: Rule,
    limits: readonly UnitLimit[],
    counter: RateLimitCounter,
    identity: ResolvedIdentity,
    call: Call,
  ): MaybePromise<RateLimitDecision | undefined> {
    // A constant cost (or none) is read as it is: no call, no allocation on the usual path.
    const given = rule.cost;
    const cost =
      typeof given === 'function' ? this.costOf(rule, given, call.request, identity) : given;
    const shadow = (rule.mode ?? this.options.mode) === 'shadow';
    // Every query has the same shape (undefined for what the rule leaves to the backend).
    const query: ConsumeQuery = {
      counter,
      limits,
      // A shadow rule must never reject, and a block would reject the user's other requests.
      blockMs: shadow ? 0 : rule.blockTime * 1000,
      algorithm: rule.algorithm,
      burst: rule.burst,
      cost: cost === BAD_COST ? undefined : cost,
    };
    if (cost === BAD_COST) {
      return andThen(this.failures.withoutBackend(query), (result) => {
        this.reportFailure(rule, counter, identity, call, 0);
        return this.settled(rule, identity, query, result, shadow);
      });
    }
    const cache =
      this.rejectCache !== undefined && !this.uncached.has(rule) ? this.rejectCache : undefined;
    let askedAt = 0;
    if (cache !== undefined) {
      // The hot-key shortcut: a rejection that still stands, answered without the backend.
      const standing = cache.lookup(query);
      if (standing !== undefined)
        return this.finish(rule, identity, query, standing, shadow, call, 0);
      askedAt = cache.now();
    }
    const started = this.reporter.active ? performance.now() : -1;
    const answer = this.failures.consume(query);
    // Not andThen: a closure per request, on the path every decision takes.
    if (answer instanceof Promise) {
      return answer.then((result) =>
        this.answered(rule, identity, query, shadow, call, result, cache, askedAt, started),
      );
    }
    return this.answered(rule, identity, query, shadow, call, answer, cache, askedAt, started);
  }

  /**
   * The decision for what the backend (or the failure policy) answered to `query`: asked through
   * `cache` (if any) at `askedAt` on its clock, and at `started` on `performance.now()` when events
   * are reported (-1 when not).
   */
  private answered(
    rule: Rule,
    identity: ResolvedIdentity,
    query: ConsumeQuery,
    shadow: boolean,
    call: Call,
    result: ConsumeResult | FailureOutcome,
    cache: LocalRejectCache | undefined,
    askedAt: number,
    started: number,
  ): RateLimitDecision | undefined {
    const durationMs = started >= 0 ? performance.now() - started : 0;
    if (isFailureOutcome(result)) {
      this.reportFailure(rule, query.counter, identity, call, durationMs);
      return this.settled(rule, identity, query, result, shadow);
    }
    // Only the main backend's answers: a fallback's, during an outage, say nothing of it.
    if (cache !== undefined && this.failures.healthy) cache.remember(query, result, askedAt);
    return this.finish(rule, identity, query, result, shadow, call, durationMs);
  }

  /** The decision for a backend's answer, reported to the listeners. */
  private finish(
    rule: Rule,
    identity: ResolvedIdentity,
    query: ConsumeQuery,
    result: ConsumeResult,
    shadow: boolean,
    call: Call,
    durationMs: number,
  ): RateLimitDecision {
    const decision = this.decided(rule, identity, query, result, shadow);
    if (this.reporter.active) {
      this.reporter.report({
        outcome: decision.outcome,
        rule,
        counter: query.counter,
        identity,
        retryAfterMs: result.retryAfterMs,
        durationMs,
        contextType: call.reader.type,
      });
    }
    return decision;
  }

  /**
   * The decision for a request the failure policy decided: the fallback backend's answer, or
   * nothing (`'open'`), or a 503 (`'closed'`).
   */
  private settled(
    rule: Rule,
    identity: ResolvedIdentity,
    query: ConsumeQuery,
    result: ConsumeResult | FailureOutcome,
    shadow: boolean,
  ): RateLimitDecision | undefined {
    if (!isFailureOutcome(result)) return this.decided(rule, identity, query, result, shadow);
    return result.kind === 'open' ? undefined : unavailable(rule, identity, query.counter);
  }

  /** The decision for a backend's `result`; a shadow rule lets a rejected request through. */
  private decided(
    rule: Rule,
    identity: ResolvedIdentity,
    query: ConsumeQuery,
    result: ConsumeResult,
    shadow: boolean,
  ): RateLimitDecision {
    const outcome = result.allowed ? 'allowed' : shadow ? 'shadow-rejected' : 'rejected';
    const { counter } = query;
    return {
      kind: 'decided',
      allowed: outcome !== 'rejected',
      outcome,
      rule,
      identity,
      counter,
      query,
      result,
    };
  }

  /** Reports a request the backend could not decide (or the module could not ask it about). */
  private reportFailure(
    rule: Rule,
    counter: RateLimitCounter,
    identity: ResolvedIdentity,
    call: Call,
    durationMs: number,
  ): void {
    if (!this.reporter.active) return;
    const event: RateLimitEvent = {
      outcome: 'backend-error',
      rule,
      counter,
      identity,
      retryAfterMs: 0,
      durationMs,
      contextType: call.reader.type satisfies RateLimitContextType,
    };
    this.reporter.report(event);
  }

  /**
   * What the guard calls once a call it decided goes through: hands the decision to a handler
   * that reads it (`@RateLimitState()`), and, for a `count: 'failures' | 'successes'` rule,
   * waits for the call's outcome to {@link settle} it (the HTTP response's status; elsewhere the
   * handler's outcome, seen by `RateLimitInterceptor`). Once per decision, however many guards
   * share it.
   */
  admitted(context: ExecutionContext, decision: RateLimitDecision): void {
    if (decision.kind !== 'decided') return;
    const counts = decision.rule.count !== 'all' && decision.result.allowed;
    const wantsState = stateDecoratorUsed() && this.planFor(context).wantsState;
    if (!counts && !wantsState) return;
    if (this.admittedDecisions.has(decision)) return;
    this.admittedDecisions.add(decision);
    if (wantsState) {
      const { rule, outcome, counter, result } = decision;
      rememberState(context, { rule, outcome, counter, units: result.units });
    }
    if (!counts) return;
    const settle = (status: number): void => this.settle(decision, status);
    // The table counts HTTP requests (one per GraphQL request too): the response's status says.
    // A decorator rule counts calls: a GraphQL field's own outcome, not its HTTP request's.
    const byResponse = context.getType() === 'http' || this.tableRuleSet.has(decision.rule);
    const response = byResponse ? this.edge.readerOf(context)?.httpResponse(context) : undefined;
    if (response !== undefined) this.edge.platformFor(response).onFinished(response, settle);
    else settleAfterHandler(context, settle);
  }

  /**
   * Gives back what an admitted request of a `count: 'failures' | 'successes'` rule took, when
   * its response `status` shows that it does not count. Never throws: a backend that fails to
   * release is logged, and the request then stays counted (the safe side).
   */
  settle(decision: RateLimitDecision, status: number): void {
    if (decision.kind !== 'decided' || !decision.result.allowed) return;
    const { count } = decision.rule;
    if (count === 'all' || status >= 400 === (count === 'failures')) return;
    this.failures.release(decision.query);
  }

  /**
   * What `cost` says this request takes, or {@link BAD_COST} when it throws or returns anything
   * but a whole number of at least 1: warned about once per rule, until it returns a good value.
   */
  private costOf(
    rule: Rule,
    cost: CostFunction,
    request: unknown,
    identity: ResolvedIdentity,
  ): number | typeof BAD_COST {
    let value: unknown;
    let problem: string;
    try {
      value = cost(request as RateLimitRequest, identity);
      if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 1) {
        this.failingCosts.delete(rule);
        return value;
      }
      if (value instanceof Promise) {
        // Its rejection is nobody's to handle once ignored: keep it from crashing the process.
        value.catch(() => undefined);
        problem = 'returned a promise (a cost function must answer synchronously)';
      } else {
        problem = `returned ${describeValue(value)}`;
      }
    } catch (error) {
      problem = `threw an error (${errorText(error)})`;
    }
    this.warnOnce(
      this.failingCosts,
      rule,
      'cost function',
      problem,
      'return a whole number of at least 1 (such as 1 for a search, 10 for a report)',
    );
    return BAD_COST;
  }

  /**
   * Warns about a failing function of `rule` once, until it works again (the caller deletes the
   * rule from `failing` when it does).
   */
  private warnOnce(
    failing: WeakSet<Rule>,
    rule: Rule,
    subject: string,
    problem: string,
    fix: string,
  ): void {
    if (failing.has(rule)) return;
    failing.add(rule);
    const where = this.ruleLocations.get(rule) ?? `{ ${describeRule(rule)} }`;
    const behaviour =
      failing === this.failingLimits
        ? this.failures.behaviourWithoutLimits("that rule's requests")
        : this.failures.behaviour("that rule's requests");
    this.logger.warn(
      `The ${subject} of rate-limit rule ${where} ${problem}; it must ${fix}. Until it does, ` +
        `${behaviour}, as during a backend outage.`,
    );
  }

  /** The caller's identity; `null` when `onAuthError` let it through unlimited. */
  private identify(
    request: unknown,
    context: ExecutionContext,
  ): MaybePromise<ResolvedIdentity | typeof UNLIMITED> {
    let identity: MaybePromise<ResolvedIdentity>;
    try {
      identity = this.authenticator!(request as RateLimitRequest, context);
    } catch (error) {
      return this.onAuthFailure(error, context);
    }
    if (identity instanceof Promise) {
      return identity.catch((error: unknown) => this.onAuthFailure(error, context));
    }
    return identity;
  }

  /** `authenticate` threw: `onAuthError` decides, or the error propagates. */
  private async onAuthFailure(
    error: unknown,
    context: ExecutionContext,
  ): Promise<ResolvedIdentity | typeof UNLIMITED> {
    if (!this.options.onAuthError) throw error;
    const fallback = await this.options.onAuthError(error, context);
    return fallback === undefined ? UNLIMITED : normalizeIdentity(fallback);
  }

  private planFor(context: ExecutionContext): HandlerPlan {
    const handler = context.getHandler();
    let plan = this.plans.get(handler);
    if (plan === undefined) {
      plan = this.buildPlan(handler, context.getClass());
      this.plans.set(handler, plan);
    }
    return plan;
  }

  private buildPlan(
    handler: ReturnType<ExecutionContext['getHandler']>,
    controller: Type<unknown>,
  ): HandlerPlan {
    const handlerSkip = this.reflector.get<boolean | undefined>(RATE_LIMIT_SKIP, handler);
    const classSkip = this.reflector.get<boolean | undefined>(RATE_LIMIT_SKIP, controller);
    const skip = handlerSkip ?? classSkip ?? false;
    const lists = [
      this.reflector.get<readonly Rule[] | undefined>(RATE_LIMIT_RULES, handler),
      this.reflector.get<readonly Rule[] | undefined>(RATE_LIMIT_RULES, controller),
    ].filter((list): list is readonly Rule[] => list !== undefined && list.length > 0);
    const wantsState = this.reflector.get<boolean | undefined>(RATE_LIMIT_STATE, handler) === true;
    return { skip, lists, wantsState, scope: `handler:${controller.name}.${handler.name}` };
  }

  /**
   * An `AuthResolver` subclass from `authenticate`: the application's own provider when it
   * registered one, else a new instance created in this module's scope (it sees the module's
   * `imports` and every global provider).
   */
  private async createResolver(type: Type<AuthResolver>): Promise<AuthResolver> {
    try {
      return this.moduleRef.get(type, { strict: false });
    } catch {
      return this.moduleRef.create(type);
    }
  }
}

/**
 * The hot-key shortcut the `localRejectCache` option asks for: on by default for a Redis backend
 * (a memory backend answers as fast as the cache), on the backend's own clock when it has one.
 */
function rejectCacheFor(
  backend: RateLimitBackend,
  option: RateLimitModuleOptions['localRejectCache'],
): LocalRejectCache | undefined {
  const on = option ?? backend instanceof RedisBackend;
  if (on === false) return undefined;
  const now = typeof backend.localClock === 'function' ? backend.localClock() : undefined;
  const maxEntries = typeof on === 'object' ? on.maxEntries : undefined;
  return new LocalRejectCache({
    algorithm: backend.algorithm,
    ...(maxEntries === undefined ? {} : { maxEntries }),
    ...(now === undefined ? {} : { now }),
  });
}

/** The decision for a request `failurePolicy: 'closed'` rejects (a 503). */
function unavailable(
  rule: Rule,
  identity: ResolvedIdentity,
  counter: RateLimitCounter,
): RateLimitDecision {
  return { kind: 'unavailable', allowed: false, outcome: 'backend-error', rule, identity, counter };
}

/** What {@link RateLimitService.costOf} returns for a cost function that failed. */
const BAD_COST: unique symbol = Symbol('bad cost');

/** A rule's units and group, for a warning about a rule whose origin is unknown. */
function describeRule(rule: Rule): string {
  const units = rule.limits.map(({ unit, limit, windowMs }) =>
    unit === 'window' ? `limit: ${limit}, window: ${windowMs / 1000}` : `${unit}: ${limit}`,
  );
  return [...units, `group: '${rule.group}'`, `method: '${rule.method}'`].join(', ');
}

/** The first rule of `rules` for the caller's group and the request method. */
function firstRuleFor(rules: readonly Rule[], group: string, method: string): Rule | undefined {
  for (const rule of rules) {
    if (rule.appliesTo(group, method)) return rule;
  }
  return undefined;
}

/** A request method in upper case (`GET` when missing), converting only unusual spellings. */
function upperCaseMethod(method: string | undefined): string {
  // GET first: most requests, and a string compare is cheaper than the set lookup.
  if (method === 'GET' || method === undefined) return 'GET';
  return UPPER_CASE_METHODS.has(method) ? method : method.toUpperCase();
}
