import type { Type } from '@nestjs/common';
import type { DiscoveryService, MetadataScanner, Reflector } from '@nestjs/core';
import { RATE_LIMIT_RULES } from '../rate-limit.constants.js';
import type { Rule } from './rule.js';
import type { RuleTable } from './rule-table.js';

/** A rule of the application, and where it was written, for start-up messages. */
export interface LocatedRule {
  readonly rule: Rule;
  /** `pattern "/towns", rule 2` or `@RateLimit() rule 1 on CatsController.find`. */
  readonly where: string;
  /** A decorator rule's class or method, `CatsController` or `CatsController.find`. */
  readonly on?: string;
}

/** Every rule of the pattern table, in table order. */
export function tableRules(table: RuleTable): LocatedRule[] {
  return table.entries.flatMap((entry) =>
    entry.rules.map((rule, index) => ({
      rule,
      where: `pattern ${JSON.stringify(entry.source)}, rule ${index + 1}`,
    })),
  );
}

/**
 * Every `@RateLimit()` rule on a class Nest knows (controllers, and providers such as GraphQL
 * resolvers and WebSocket gateways) and on its methods, found through Nest's public discovery
 * API. The guard reads the same metadata per handler on the first request; this lets the module
 * check every rule before the first request.
 */
export function decoratedRules(
  discovery: DiscoveryService,
  scanner: MetadataScanner,
  reflector: Reflector,
): LocatedRule[] {
  const found: LocatedRule[] = [];
  const seen = new Set<object>();
  for (const wrapper of [...discovery.getControllers(), ...discovery.getProviders()]) {
    const type = wrapper.metatype;
    // Providers made by a factory or given as a value have no class to read decorators from.
    if (typeof type !== 'function' || wrapper.inject || seen.has(type)) continue;
    seen.add(type);
    const className = type.name;
    collect(found, reflector.get(RATE_LIMIT_RULES, type), `${className}`);
    const prototype = (type as Type<unknown>).prototype as Record<string, unknown> | undefined;
    if (prototype === undefined) continue;
    for (const name of scanner.getAllMethodNames(prototype)) {
      const method = prototype[name];
      if (typeof method !== 'function') continue;
      collect(found, reflector.get(RATE_LIMIT_RULES, method), `${className}.${name}`);
    }
  }
  return found;
}

function collect(found: LocatedRule[], rules: readonly Rule[] | undefined, on: string): void {
  rules?.forEach((rule, index) => {
    found.push({ rule, where: `@RateLimit() rule ${index + 1} on ${on}`, on });
  });
}
