/**
 * Tables Roost meant to drop on a tenant's engine when the engine could not be reached (a remote
 * server down, a cell restarting): the stage tables of an import cut short, the tables of a data
 * source whose drop was already in the state. They held the tenant's disk (and `storage_bytes`)
 * until a create of the same name or a day-old sweep. The drop is tried again every 30 s for an
 * hour, in this process. A data source's tables are also recorded in the state with its drop
 * (`tablesToDrop`, see api/datasources.ts) and handed back here at the next start (`resume`): a
 * kill -9 between the state change and the drop, or a restart while the engine was away, left them
 * until a create of the same name. Stage tables are the stage sweep's.
 */
import { dropTableSql, type Engine } from '../src/cells/engine.js';
import type { Logger } from '../src/log/logger.js';

const RETRY_MS = 30_000;
const TRIES = 120;
/** A later try waits this long for its engine (one server that does not answer holds no other tenant's drops for long). */
const TRY_TIMEOUT_MS = 10_000;

/**
 * Asked before each later try: a release to call once the drop is done (what it holds keeps
 * others from taking the name meanwhile), `'wait'` for another try later, or `'keep'` when the
 * table is no longer to be dropped (a data source of the name created since took the name, and
 * dropped the leftovers itself).
 */
export type DropHold = () => (() => void) | 'wait' | 'keep';

interface Pending { tenant: string; qualified: string; tries: number; hold?: DropHold; done?: () => void }

export class DropLater {
  #pending = new Map<string, Pending>();
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  #running: Promise<void> | undefined;

  /** `engineOf` answers the tenant's engine now, or undefined when the tenant is gone. */
  constructor(private readonly engineOf: (tenant: string) => Engine | undefined, private readonly log: Logger, private readonly retryMs = RETRY_MS) {}

  /**
   * Runs `DROP TABLE IF EXISTS <qualified>` now; when that fails, again later. Never throws.
   * `done` is called once the table is dropped, or no longer to be (its hold said 'keep', its
   * tenant is gone); not when the tries run out (the record in the state stays for the next start).
   */
  async drop(tenant: string, qualified: string, hold?: DropHold, done?: () => void): Promise<void> {
    try {
      const e = this.engineOf(tenant);
      if (e) await e.exec(dropTableSql(e, qualified));
      done?.();
    } catch (err) {
      this.log.warn('table not dropped; tried again later', { tenant, table: qualified, err });
      this.resume(tenant, qualified, hold, done);
    }
  }

  /** A drop to try at the next round (under its hold), not now: one that failed, or was recorded before a restart. */
  resume(tenant: string, qualified: string, hold?: DropHold, done?: () => void): void {
    this.#pending.set(`${tenant}\0${qualified}`, { tenant, qualified, tries: 0, hold, done });
    this.#schedule();
  }

  /** No more tries (the server stops); waits for one under way, so none starts a cell after the engines close. */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#running;
  }

  #schedule(): void {
    if (this.#timer || this.#closed) return;
    this.#timer = setTimeout(() => { this.#timer = undefined; this.#running = this.#retry().finally(() => { this.#running = undefined; }); }, this.retryMs);
    this.#timer.unref();
  }

  async #retry(): Promise<void> {
    for (const [key, p] of [...this.#pending]) {
      if (this.#closed) return;
      const e = this.engineOf(p.tenant);
      if (!e) { this.#pending.delete(key); p.done?.(); continue; }
      const held = p.hold ? p.hold() : undefined;
      if (held === 'keep') { this.#pending.delete(key); p.done?.(); continue; }
      if (held === 'wait') continue;
      try {
        await e.exec(dropTableSql(e, p.qualified), { timeoutMs: TRY_TIMEOUT_MS });
        this.#pending.delete(key);
        p.done?.();
        this.log.info('table dropped on a later try', { tenant: p.tenant, statement: `DROP TABLE IF EXISTS ${p.qualified}` });
      } catch (err) {
        if (++p.tries >= TRIES) {
          this.#pending.delete(key);
          this.log.warn('table still not dropped; given up', { tenant: p.tenant, statement: `DROP TABLE IF EXISTS ${p.qualified}`, err });
        }
      } finally {
        if (typeof held === 'function') held();
      }
    }
    if (this.#pending.size) this.#schedule();
  }
}
