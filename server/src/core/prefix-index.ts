// An index of items by the literal prefix of a glob: every value a glob matches starts with the
// characters before its first wildcard. A trie over those prefixes finds, for one claim value, every
// item whose prefix the value starts with, in time proportional to the value's length — not to the
// number of items. Used for bindings that have no exact condition to index on.

/** The characters before the first wildcard (`*` or `?`). */
export const literalPrefix = (pattern: string): string => {
  const end = pattern.search(/[*?]/);
  return end === -1 ? pattern : pattern.slice(0, end);
};

interface Node<T> {
  children: Map<string, Node<T>>;
  items: T[];
}

export class PrefixIndex<T> {
  private readonly root: Node<T> = { children: new Map(), items: [] };

  add(prefix: string, item: T): void {
    let node = this.root;
    for (const ch of prefix) {
      let next = node.children.get(ch);
      if (!next) node.children.set(ch, (next = { children: new Map(), items: [] }));
      node = next;
    }
    node.items.push(item);
  }

  /** Adds to `out` every item whose prefix `value` starts with. */
  collect(value: string, out: Set<T>): void {
    let node: Node<T> | undefined = this.root;
    for (const item of node.items) out.add(item);
    for (const ch of value) {
      node = node.children.get(ch);
      if (!node) return;
      for (const item of node.items) out.add(item);
    }
  }
}
