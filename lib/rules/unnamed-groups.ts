import regjsparser, { type AstNode } from 'regjsparser';

type ParserFeatures = { namedGroups: true; lookbehind: true; unicodePropertyEscape: true };
const PARSER_FEATURES: ParserFeatures = {
  namedGroups: true,
  lookbehind: true,
  unicodePropertyEscape: true,
};

/**
 * `pattern`'s source with named groups made plain: `(?<id>x)` becomes `(x)` and `\k<id>` becomes
 * `(?:\1)`. redos-detector does not parse group names (its issue 249), and a name changes nothing
 * about backtracking. Groups keep their numbers, so every backreference still means the same.
 * Parsed with regjsparser, the parser redos-detector itself uses, so that a `(?<` inside a class
 * or after a backslash is never mistaken for a group.
 */
export function withoutGroupNames(pattern: RegExp): string {
  const source = pattern.source;
  if (!source.includes('(?<')) return source;
  const root = regjsparser.parse<ParserFeatures>(source, pattern.flags, PARSER_FEATURES);
  const numbers = new Map<string, number>();
  const edits: { start: number; end: number; text: string }[] = [];
  const references: { start: number; end: number; name: string }[] = [];
  let groups = 0;
  // Depth first in source order meets capturing groups in the order they are numbered.
  const visit = (node: AstNode<ParserFeatures>): void => {
    if (node.type === 'group' && node.behavior === 'normal') {
      groups += 1;
      if (node.name) {
        numbers.set(node.name.value, groups);
        edits.push({ start: node.range[0], end: node.name.range[1] + 1, text: '(' });
      }
    } else if (node.type === 'reference' && node.name) {
      references.push({ start: node.range[0], end: node.range[1], name: node.name.value });
    }
    if ('body' in node && Array.isArray(node.body)) {
      for (const child of node.body as AstNode<ParserFeatures>[]) visit(child);
    }
  };
  visit(root);
  for (const { start, end, name } of references) {
    // The group around the number keeps a digit after `\k<id>` from joining it (`\10`).
    edits.push({ start, end, text: `(?:\\${numbers.get(name)})` });
  }
  let plain = source;
  for (const { start, end, text } of edits.sort((x, y) => y.start - x.start)) {
    plain = plain.slice(0, start) + text + plain.slice(end);
  }
  return plain;
}
