/**
 * Reads a V8 `.cpuprofile` (written by `node --cpu-prof`) and sums self time per function and per
 * origin (this library's build, Nest, Express, Node's own code…).
 *
 * @module
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

interface CallFrame {
  readonly functionName: string;
  readonly url: string;
  readonly lineNumber: number;
  readonly columnNumber: number;
}

interface ProfileNode {
  readonly id: number;
  readonly callFrame: CallFrame;
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
  readonly startTime: number;
  readonly endTime: number;
}

export interface SelfTime {
  /** `name (file:line)`, the file relative to the repository. */
  readonly function: string;
  readonly origin: string;
  readonly selfMs: number;
  /** Share of all sampled time, idle and GC included. */
  readonly share: number;
}

export interface ProfileSummary {
  readonly totalMs: number;
  /** Self time per origin, largest first. */
  readonly byOrigin: readonly { origin: string; selfMs: number; share: number }[];
  /** The functions with the most self time, over every origin. */
  readonly topFunctions: readonly SelfTime[];
  /** The functions of this library's build (dist/) with the most self time. */
  readonly topLibraryFunctions: readonly SelfTime[];
}

/** The origin of a script URL: this library, a package, Node itself, or V8's pseudo-frames. */
function originOf(url: string, functionName: string, root: string): string {
  if (url === '') {
    // (program), (idle), (garbage collector), or a native/builtin frame.
    return functionName.startsWith('(') ? functionName : 'V8 builtins';
  }
  if (url.startsWith('node:')) return 'Node.js core';
  const path = url.startsWith('file://') ? fileURLToPath(url) : url;
  if (path.startsWith(`${root}/dist/`)) return 'nestjs-ratelimit (dist/)';
  if (path.startsWith(`${root}/dist-bench/`)) return 'benchmark app';
  const modules = path.lastIndexOf('/node_modules/');
  if (modules >= 0) {
    const rest = path.slice(modules + '/node_modules/'.length).split('/');
    return rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]!;
  }
  return 'other';
}

function shortFile(url: string, root: string): string {
  const path = url.startsWith('file://') ? fileURLToPath(url) : url;
  return path.startsWith(`${root}/`) ? path.slice(root.length + 1) : path;
}

/** Sums self time per function and per origin; `root` is the repository's absolute path. */
export function summarizeProfile(file: string, root: string, top = 15): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfUs = new Map<number, number>();
  const count = Math.min(profile.samples.length, profile.timeDeltas.length);
  for (let i = 0; i < count; i++) {
    const id = profile.samples[i]!;
    selfUs.set(id, (selfUs.get(id) ?? 0) + Math.max(0, profile.timeDeltas[i]!));
  }
  let totalUs = 0;
  const byFunction = new Map<string, { origin: string; us: number }>();
  const byOrigin = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const frame = nodes.get(id)?.callFrame;
    if (frame === undefined) continue;
    totalUs += us;
    const origin = originOf(frame.url, frame.functionName, root);
    const name =
      frame.url === ''
        ? frame.functionName || '(anonymous)'
        : `${frame.functionName || '(anonymous)'} (${shortFile(frame.url, root)}:${frame.lineNumber + 1})`;
    const entry = byFunction.get(name) ?? { origin, us: 0 };
    entry.us += us;
    byFunction.set(name, entry);
    byOrigin.set(origin, (byOrigin.get(origin) ?? 0) + us);
  }
  const share = (us: number): number => (totalUs === 0 ? 0 : us / totalUs);
  const functions = [...byFunction]
    .map(([name, { origin, us }]) => ({
      function: name,
      origin,
      selfMs: us / 1000,
      share: share(us),
    }))
    .sort((a, b) => b.selfMs - a.selfMs);
  return {
    totalMs: totalUs / 1000,
    byOrigin: [...byOrigin]
      .map(([origin, us]) => ({ origin, selfMs: us / 1000, share: share(us) }))
      .sort((a, b) => b.selfMs - a.selfMs),
    topFunctions: functions.slice(0, top),
    topLibraryFunctions: functions
      .filter((f) => f.origin === 'nestjs-ratelimit (dist/)')
      .slice(0, top),
  };
}
