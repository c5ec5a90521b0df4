/**
 * The control-plane state store contract. State is one JSON document held in
 * memory; every change is a list of path operations that a store makes durable
 * before it is acknowledged. A Redis store can implement the same contract.
 */

export type Path = readonly string[];

export type Op =
  | { op: 'put'; path: Path; value: unknown }
  | { op: 'del'; path: Path };

export type Doc = Record<string, unknown>;

export interface LoadedState {
  doc: Doc;
  /** Sequence number of the last applied change. */
  seq: number;
  /** Human-readable notes about recovery (e.g. a torn record dropped). */
  recovered: string[];
}

export interface StateStore {
  readonly kind: string;
  load(): Promise<LoadedState>;
  /** Resolves only once the change with sequence number `seq` is durable. */
  append(seq: number, ops: Op[]): Promise<void>;
  /** Optionally compacts: the store may persist `doc` as of `seq` and drop older changes. */
  maybeCompact(seq: number, doc: Doc): Promise<void>;
  close(): Promise<void>;
}

function setOwn(node: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(node, key, { value, writable: true, enumerable: true, configurable: true });
}

/** Applies operations to a document in place. */
export function applyOps(doc: Doc, ops: readonly Op[]): void {
  for (const o of ops) {
    if (o.path.length === 0) throw new Error('state path must not be empty');
    let node: Record<string, unknown> = doc;
    for (const key of o.path.slice(0, -1)) {
      // Own entries only, and set as own properties: a key `__proto__` walked into (or replaced)
      // Object.prototype, which every object of the process shares.
      let next = Object.hasOwn(node, key) ? node[key] : undefined;
      if (next === undefined || next === null || typeof next !== 'object') {
        if (o.op === 'del') { node = undefined as never; break; }
        next = {};
        setOwn(node, key, next);
      }
      node = next as Record<string, unknown>;
    }
    if (!node) continue;
    const last = o.path[o.path.length - 1]!;
    if (o.op === 'put') setOwn(node, last, structuredClone(o.value));
    else if (Object.hasOwn(node, last)) delete node[last];
  }
}
