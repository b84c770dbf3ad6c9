import {
  Inject,
  Injectable,
  type ExecutionContext,
  type OnApplicationShutdown,
  type OnModuleInit,
  type Type,
} from '@nestjs/common';
import { ModuleRef, Reflector } from '@nestjs/core';
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
  type ConsumeResult,
  type RateLimitCounter,
} from './backends/rate-limit.backend.js';
import { BackendFailureHandler, isFailureOutcome } from './backends/failure-policy.js';
import { requestPath } from './http/request-path.js';
import { andThen, type MaybePromise } from './internal/maybe-promise.js';
import {
  RATE_LIMIT_IDENTITY,
  RATE_LIMIT_OPTIONS,
  RATE_LIMIT_RULES,
  RATE_LIMIT_SKIP,
} from './rate-limit.constants.js';

import type { RateLimitModuleOptions } from './rate-limit.options.js';
import type { Rule } from './rules/rule.js';
import { RuleTable, type PatternRules } from './rules/rule-table.js';

/** The outcome for a request that a limited rule applied to. */
export type RateLimitDecision =
  | {
      /** The backend decided. */
      readonly kind: 'decided';
      /** True when the backend admitted (and counted) the request. */
      readonly allowed: boolean;
      readonly rule: Rule;
      readonly identity: ResolvedIdentity;
      readonly counter: RateLimitCounter;
      readonly result: ConsumeResult;
    }
  | {
      /** The backend failed and `failurePolicy: 'closed'` rejects the request (a 503). */
      readonly kind: 'unavailable';
      readonly allowed: false;
      readonly rule: Rule;
      readonly identity: ResolvedIdentity;
      readonly counter: RateLimitCounter;
    };

/** Decorator rules of one handler, resolved once: the handler's list first, then the class's. */
interface HandlerPlan {
  readonly skip: boolean;
  readonly lists: readonly (readonly Rule[])[];
  /** Counter scope of decorator rules without a zone. */
  readonly scope: string;
}

/** Cached on the request when `onAuthError` let the caller through unlimited. */
const UNLIMITED = null;

/** Where the identity is kept on the request (a symbol key, so it cannot clash with fields). */
type IdentityCache = Record<symbol, ResolvedIdentity | typeof UNLIMITED | undefined>;

const NO_ROWS: readonly PatternRules[] = Object.freeze([]);

/**
 * Decides requests: which rule applies (SPEC 2.3), who the caller is (resolved at most once per
 * request, and only when some rule could apply), and what the backend says. Free of HTTP response
 * concerns, so the guard stays thin and this can be used on its own (e.g. in a custom guard).
 */
@Injectable()
export class RateLimitService implements OnModuleInit, OnApplicationShutdown {
  private readonly table: RuleTable;
  private readonly failures: BackendFailureHandler;
  private readonly plans = new WeakMap<object, HandlerPlan>();
  private authenticator: Authenticator | undefined;

  constructor(
    @Inject(RATE_LIMIT_OPTIONS) private readonly options: RateLimitModuleOptions,
    private readonly backend: RateLimitBackend,
    private readonly reflector: Reflector,
    private readonly moduleRef: ModuleRef,
  ) {
    // Compiled here so a bad table stops the application from starting.
    this.table = RuleTable.compile(options.config);
    this.failures = new BackendFailureHandler(backend, options);
  }

  async onModuleInit(): Promise<void> {
    this.authenticator = await compileAuthenticate(
      this.options.authenticate ?? new IpAuthResolver(),
      (type) => this.createResolver(type),
    );
  }

  async onApplicationShutdown(): Promise<void> {
    await this.backend.close();
    await this.failures.close();
  }

  /**
   * Decides the request of an HTTP `context`: a decision, or `undefined` when no limited rule
   * applies (skipped, no candidate, no rule for the caller's group and method, an unlimited rule,
   * or a failing backend under `failurePolicy: 'open'`). Returns a plain value when every step is
   * synchronous (memory backend, synchronous resolver) and a promise otherwise.
   * @throws whatever `authenticate` / `onAuthError` throw (`EmptyInformation` is a 401)
   */
  check(context: ExecutionContext): MaybePromise<RateLimitDecision | undefined> {
    const plan = this.planFor(context);
    if (plan.skip) return undefined;
    const request = context.switchToHttp().getRequest<RateLimitRequest>();
    const path = this.table.isEmpty ? '' : requestPath(request);
    const rows = this.table.isEmpty ? NO_ROWS : this.table.matching(path);
    if (plan.lists.length === 0 && rows.length === 0) return undefined;
    return andThen(this.identify(request, context), (identity) =>
      identity === UNLIMITED ? undefined : this.decide(request, plan, rows, path, identity),
    );
  }

  /** Picks the rule for an identified caller and asks the backend. */
  private decide(
    request: RateLimitRequest,
    plan: HandlerPlan,
    rows: readonly PatternRules[],
    path: string,
    identity: ResolvedIdentity,
  ): MaybePromise<RateLimitDecision | undefined> {
    const method = (request.method ?? 'GET').toUpperCase();
    const chosen = selectRule(plan, rows, path, identity.group, method);
    if (chosen === undefined || chosen.rule.unlimited) return undefined;

    const { rule } = chosen;
    const counter: RateLimitCounter = {
      user: identity.user,
      scope: rule.zone === undefined ? chosen.scope : `zone:${rule.zone}`,
      method: rule.method,
    };
    const query = { counter, limits: rule.limits, blockMs: rule.blockTime * 1000 };
    return andThen(this.failures.consume(query), (result): RateLimitDecision | undefined => {
      if (!isFailureOutcome(result)) {
        return { kind: 'decided', allowed: result.allowed, rule, identity, counter, result };
      }
      if (result.kind === 'open') return undefined;
      return { kind: 'unavailable', allowed: false, rule, identity, counter };
    });
  }

  /** The caller's identity, resolved once per request; `null` when `onAuthError` let it through. */
  private identify(
    request: RateLimitRequest,
    context: ExecutionContext,
  ): MaybePromise<ResolvedIdentity | typeof UNLIMITED> {
    const cache = request as unknown as IdentityCache;
    const cached = cache[RATE_LIMIT_IDENTITY];
    if (cached !== undefined) return cached;
    let identity: MaybePromise<ResolvedIdentity>;
    try {
      identity = this.authenticator!(request, context);
    } catch (error) {
      return this.onAuthFailure(error, context, cache);
    }
    if (identity instanceof Promise) {
      return identity.then(
        (resolved) => (cache[RATE_LIMIT_IDENTITY] = resolved),
        (error: unknown) => this.onAuthFailure(error, context, cache),
      );
    }
    return (cache[RATE_LIMIT_IDENTITY] = identity);
  }

  /** `authenticate` threw: `onAuthError` decides, or the error propagates. */
  private async onAuthFailure(
    error: unknown,
    context: ExecutionContext,
    cache: IdentityCache,
  ): Promise<ResolvedIdentity | typeof UNLIMITED> {
    if (!this.options.onAuthError) throw error;
    const fallback = await this.options.onAuthError(error, context);
    return (cache[RATE_LIMIT_IDENTITY] =
      fallback === undefined ? UNLIMITED : normalizeIdentity(fallback));
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
    return { skip, lists, scope: `handler:${controller.name}.${handler.name}` };
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
 * The first rule, in the first candidate list, for the caller's group and the request method;
 * lists without one are passed over (SPEC 2.3 step 4).
 */
function selectRule(
  plan: HandlerPlan,
  rows: readonly PatternRules[],
  path: string,
  group: string,
  method: string,
): { rule: Rule; scope: string } | undefined {
  for (const rules of plan.lists) {
    const rule = rules.find((candidate) => candidate.appliesTo(group, method));
    if (rule) return { rule, scope: plan.scope };
  }
  for (const row of rows) {
    const rule = row.rules.find((candidate) => candidate.appliesTo(group, method));
    if (rule) return { rule, scope: `path:${path}` };
  }
  return undefined;
}
