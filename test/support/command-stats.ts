import type { Redis } from 'ioredis';

/** Calls per command since the node started (or its last CONFIG RESETSTAT), from INFO commandstats; commands run inside Lua scripts are included. */
export async function commandCalls(node: Redis): Promise<Map<string, number>> {
  const info = await node.info('commandstats');
  const calls = new Map<string, number>();
  for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    calls.set(match[1]!, Number(match[2]));
  }
  return calls;
}
