/**
 * The in-memory control-plane model in front of a `StateStore`. Changes go
 * through `transact`, which serialises writers, makes the change durable, and
 * only then applies it in memory, so a reader never sees an unacknowledged write.
 */
import type { Doc, Op, StateStore } from './store.js';
import { applyOps } from './store.js';

export class State {
  #doc: Doc = {};
  #seq = 0;
  #store: StateStore;
  #chain: Promise<unknown> = Promise.resolve();
  #onWrite: (() => void) | undefined;

  constructor(store: StateStore, onWrite?: () => void) {
    this.#store = store;
    this.#onWrite = onWrite;
  }

  get storeKind() { return this.#store.kind; }
  get seq() { return this.#seq; }

  async open(): Promise<string[]> {
    const loaded = await this.#store.load();
    this.#doc = loaded.doc;
    this.#seq = loaded.seq;
    return loaded.recovered;
  }

  /** Reads a value (a deep copy is NOT made: treat the result as read-only). */
  get<T>(...path: string[]): T | undefined {
    let node: unknown = this.#doc;
    for (const k of path) {
      // Own entries only: a name like `constructor` or `__proto__` is no entry (it found
      // Object.prototype's members: a workspace called `constructor` passed as existing).
      if (node === null || typeof node !== 'object' || !Object.hasOwn(node, k)) return undefined;
      node = (node as Record<string, unknown>)[k];
    }
    return node as T | undefined;
  }

  /** Lists the values under a path (an object map), in key order. */
  list<T>(...path: string[]): T[] {
    const m = this.get<Record<string, T>>(...path);
    return m ? Object.keys(m).sort().map((k) => m[k]!) : [];
  }

  /**
   * Runs `fn` against the current state with writers serialised; the ops it
   * returns are made durable and then applied. Its return value is passed on.
   */
  transact<R>(fn: (s: State) => { ops: Op[]; result: R } | Promise<{ ops: Op[]; result: R }>): Promise<R> {
    const run = async () => {
      const { ops, result } = await fn(this);
      if (ops.length === 0) return result;
      const seq = this.#seq + 1;
      await this.#store.append(seq, ops);
      applyOps(this.#doc, ops);
      this.#seq = seq;
      this.#onWrite?.();
      // Inside the writer chain, so no append can slip between snapshot and journal reset.
      await this.#store.maybeCompact(seq, this.#doc).catch(() => {});
      return result;
    };
    const p = this.#chain.then(run, run);
    this.#chain = p.catch(() => {});
    return p;
  }

  /** Shorthand for a transaction that only writes. */
  write(ops: Op[]): Promise<void> {
    return this.transact(() => ({ ops, result: undefined }));
  }

  async close(): Promise<void> {
    await this.#chain;
    await this.#store.close();
  }
}
