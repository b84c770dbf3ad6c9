import { Injectable, type ExecutionContext } from '@nestjs/common';
import type { ResolvedIdentity } from './auth/authenticate.js';
import {
  RateLimitBackend,
  type PeekResult,
  type RateLimitCounter,
} from './backends/rate-limit.backend.js';
import { describeValue } from './config-validation.js';
import { RateLimitService } from './rate-limit.service.js';
import { LimitProblem, resolveLimits } from './rules/dynamic-limits.js';
import { Rule, type RuleInput } from './rules/rule.js';

/** What {@link RateLimitAdmin.peek} tells about one counter. */
export interface RateLimitPeek extends PeekResult {
  /** The rule whose units were read. */
  readonly rule: Rule;
}

/** Which rule {@link RateLimitAdmin.peek} reads a counter with. */
export interface PeekOptions {
  /**
   * The caller group whose rule to read, when several groups' rules count under one counter.
   * @default 'default'
   */
  readonly group?: string;
  /** The rule itself, instead of looking it up from the counter's scope and method. */
  readonly rule?: Rule | RuleInput;
  /**
   * For a rule with a limit function: the context it is called with (it gets the counter's
   * user and the group as the identity).
   */
  readonly context?: ExecutionContext;
}

/**
 * Operations on counters and blocks, for an admin endpoint or a support tool: inject it anywhere
 * (the module is global). Every method works on every backend and algorithm of this package, and
 * acts on the main backend (not on the fallback of `failurePolicy: 'fallback'`).
 *
 * `reset` and `unblock` also clear this instance's `localRejectCache`; other instances of the
 * application keep rejecting the counter until the time the backend gave them (at most the
 * window or the block that was cleared).
 *
 * A counter is `{ user, scope, method }`, as in `RateLimitInfo.counter` and `onDecision` events:
 * `scope` is `path:<path>`, `zone:<zone>` or `handler:<Class>.<method>`, and `method` the rule's
 * method as written (`'*'` by default).
 *
 * @example
 * await admin.reset({ user: '203.0.113.7', scope: 'path:/login', method: 'POST' });
 * await admin.block('203.0.113.7', 15 * 60_000);
 */
@Injectable()
export class RateLimitAdmin {
  constructor(
    private readonly backend: RateLimitBackend,
    private readonly service: RateLimitService,
  ) {}

  /**
   * Every unit's `remaining` and `resetMs` for `counter`, and the user's block, without counting
   * anything. The rule is the first one of `options.group` that counts under the counter (as a
   * request would pick it), or `options.rule`.
   * @throws Error when no rule of the group counts under the counter (pass `options.rule`)
   */
  async peek(counter: RateLimitCounter, options: PeekOptions = {}): Promise<RateLimitPeek> {
    const group = options.group ?? 'default';
    const rule =
      options.rule === undefined
        ? this.service.rulesCountingUnder(counter).find((candidate) => candidate.group === group)
        : Rule.from(options.rule, 'RateLimitAdmin.peek');
    if (rule === undefined || rule.unlimited) {
      throw new Error(
        `RateLimitAdmin.peek: no limited rule of group '${group}' counts under ` +
          `${JSON.stringify(counter)}; pass { group } or { rule }.`,
      );
    }
    let limits = rule.limits;
    if (rule.limitFunctions !== undefined) {
      const identity: ResolvedIdentity = { user: counter.user, group };
      const algorithm = rule.algorithm ?? this.backend.algorithm;
      const resolved = await resolveLimits(
        rule,
        rule.limitFunctions,
        identity,
        options.context as ExecutionContext,
        algorithm,
      );
      if (resolved instanceof LimitProblem) {
        throw new Error(`RateLimitAdmin.peek: the ${resolved.subject} ${resolved.problem}.`);
      }
      limits = resolved;
    }
    const state = await this.backend.peek({
      counter,
      limits,
      blockMs: rule.blockTime * 1000,
      algorithm: rule.algorithm,
      burst: rule.burst,
      cost: undefined,
    });
    return { rule, blockedMs: state.blockedMs, units: state.units };
  }

  /** Forgets every unit of `counter`, as if the user had never called. Resolves to whether any existed. */
  async reset(counter: RateLimitCounter): Promise<boolean> {
    const existed = await this.backend.reset(counter);
    this.service.rejectCache?.forgetCounter(counter);
    return existed;
  }

  /**
   * Blocks `user` on every counter for `ms` milliseconds from now, replacing a current block, as
   * a rule's `blockTime` does.
   * @throws Error when `ms` is not a whole number of at least 1
   */
  async block(user: string, ms: number): Promise<void> {
    if (typeof ms !== 'number' || !Number.isSafeInteger(ms) || ms < 1) {
      throw new Error(
        `RateLimitAdmin.block: ms must be a whole number of milliseconds, 1 or more, got ` +
          `${describeValue(ms)}; use unblock(user) to lift a block.`,
      );
    }
    await this.backend.block(user, ms);
    // A shorter block than the one a cached rejection came from ends it sooner.
    this.service.rejectCache?.forgetUser(user);
  }

  /** Lifts `user`'s block. Resolves to whether a block was active. */
  async unblock(user: string): Promise<boolean> {
    const was = await this.backend.unblock(user);
    this.service.rejectCache?.forgetUser(user);
    return was;
  }

  /** Milliseconds left of `user`'s block; 0 when the user is not blocked. */
  async blockedFor(user: string): Promise<number> {
    return this.backend.blockedFor(user);
  }
}
