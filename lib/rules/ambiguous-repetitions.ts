import type {
  RedosDetectorNode,
  RedosDetectorResult,
  RedosDetectorTrailEntrySide,
} from 'redos-detector';

/** What redos-detector puts before a pattern without a start anchor to check it as searched. */
const SEARCH_PREFIX = '[^]*?';

/** The repetitions behind a pattern that redos-detector found unsafe, and what they cost. */
export interface AmbiguousRepetitions {
  /**
   * `exponential`: a repetition whose body can match the same characters in more than one way
   * (`(a|aa)+`, `(a+)+`), so each repetition doubles the ways; `polynomial`: separate repetitions
   * that can split the same characters between them (`.+/.+`). `undefined` when the trails name
   * no repetition.
   */
  readonly kind: 'exponential' | 'polynomial' | undefined;
  /** The repetitions' sources, outermost ones only, in pattern order. */
  readonly sources: readonly string[];
  /**
   * The pattern has no start anchor and the trails run through the checker's stand-in for
   * trying it at every position of the path (a leading `[^]*?`), which also takes part.
   */
  readonly searched: boolean;
}

/**
 * Reads redos-detector's trails (two ways through the pattern for one input) for the repetitions
 * where they part: at each step where the two sides differ, the outermost repetition that one
 * side is in and the other is not, or is in at another iteration; when both sides are in the
 * same iteration of every repetition but at different places (`(x|x)*`), the innermost
 * repetition around both. Nested findings mean one repetition's body is ambiguous (exponential);
 * separate ones, that neighbours compete (polynomial). When the search from every position takes
 * part, the kind is left open: redos-detector's stand-in for it overstates the ambiguity.
 */
export function ambiguousRepetitions(result: RedosDetectorResult): AmbiguousRepetitions {
  const found = new Map<number, RedosDetectorNode>();
  for (const { trail } of result.trails.slice(0, 10)) {
    for (const { a, b } of trail) {
      const node =
        outermostDifference(a, b) ??
        outermostDifference(b, a) ??
        (a.node.start.offset === b.node.start.offset ? undefined : innermostShared(a, b));
      if (node) found.set(node.start.offset, node);
    }
  }
  const searchPrefix = result.patternDowngraded && result.pattern.startsWith(SEARCH_PREFIX);
  const searched = searchPrefix && found.has(0);
  if (searched) found.delete(0);
  const nodes = [...found.values()].sort((x, y) => x.start.offset - y.start.offset);
  const outermost = nodes.filter((node) => !nodes.some((other) => contains(other, node)));
  const nesting = outermost.filter((node) => nodes.some((inner) => contains(node, inner)));
  const sources = (nesting.length > 0 ? nesting : outermost).map((node) => node.source);
  if (searched || outermost.length === 0) return { kind: undefined, sources, searched };
  const kind = outermost.length > 1 && nesting.length === 0 ? 'polynomial' : 'exponential';
  return { kind, sources, searched };
}

function contains(outer: RedosDetectorNode, inner: RedosDetectorNode): boolean {
  return (
    outer !== inner &&
    outer.start.offset <= inner.start.offset &&
    inner.end.offset <= outer.end.offset
  );
}

function outermostDifference(
  side: RedosDetectorTrailEntrySide,
  other: RedosDetectorTrailEntrySide,
): RedosDetectorNode | undefined {
  for (const { node, iteration } of side.quantifierIterations) {
    const same = other.quantifierIterations.find((q) => q.node.start.offset === node.start.offset);
    if (!same || same.iteration !== iteration) return node;
  }
  return undefined;
}

function innermostShared(
  side: RedosDetectorTrailEntrySide,
  other: RedosDetectorTrailEntrySide,
): RedosDetectorNode | undefined {
  const shared = side.quantifierIterations.filter(({ node }) =>
    other.quantifierIterations.some((q) => q.node.start.offset === node.start.offset),
  );
  return shared.at(-1)?.node;
}
