/**
 * Placement: which engine holds a tenant's data. `embedded` is a cell process of
 * its own on `<data>/cells/<tenant>/`; `clickhouse` is the tenant's own server.
 */
import path from 'node:path';
import type { Engine } from '../src/cells/engine.js';
import { EmbeddedCell } from '../src/cells/embedded.js';
import { ClickHouseEngine } from '../src/cells/clickhouse.js';
import type { Logger } from '../src/log/logger.js';
import type { Metrics } from '../src/log/metrics.js';
import type { Tenant } from './registry.js';
import type { SecretBox } from '../auth/secrets.js';
import { sweepStageTables } from '../src/ingest/stage.js';
import { RoostError } from '../src/errors.js';

/**
 * On a remote server, a stage table this old belongs to no import in progress. An embedded
 * cell's are all this process's (one server per data directory): any not of an import it runs
 * now is a leftover, whatever its age.
 */
const STAGE_SWEEP_AGE_S = 24 * 3600;

export interface CellManagerOptions {
  dataDir: string;
  idleMs: number;
  healthMs: number;
  log: Logger;
  metrics: Metrics;
  secrets: SecretBox;
  /** The databases of a tenant's workspaces: a remote server's stage sweep looks at these only. */
  databasesOf?: (tenant: string) => string[];
  /** Called once an embedded cell has started (its directory given): tables to attach again. */
  onCellStart?: (tenant: string, engine: Engine, cellDir: string) => void;
}

export class CellManager {
  #opts: CellManagerOptions;
  #engines = new Map<string, Engine>();
  /** closeAll ran: the server is stopping, no engine starts any more. */
  #closed = false;

  constructor(opts: CellManagerOptions) {
    this.#opts = opts;
  }

  cellDir(tenant: string): string {
    return path.join(this.#opts.dataDir, 'cells', tenant);
  }

  /** Where the tenant's backups live: `<data>/backups/<tenant>`. */
  backupsDir(tenant: string): string {
    return path.join(this.#opts.dataDir, 'backups', tenant);
  }

  /** The tenant's engine, created (not yet started: cells start on first use). */
  engineFor(tenant: Tenant): Engine {
    // After the shutdown closed every engine, a late caller (a request answered 408 still
    // running, a flush timer) started a new cell, which outlived the server's "stopped" and held
    // the data directory's engine against the next server.
    if (this.#closed) throw new RoostError('SHUTTING_DOWN', 'the server is shutting down; retry on another instance or shortly', { retryable: true, headers: { 'Retry-After': '1' } });
    let e = this.#engines.get(tenant.slug);
    if (e) return e;
    const p = tenant.placement;
    if (p.type === 'clickhouse') {
      e = new ClickHouseEngine({ url: p.url, user: p.user, password: p.password_sealed ? this.#opts.secrets.open(p.password_sealed) : undefined, cluster: p.cluster });
      // Stage tables of imports cut short (the server went away mid-upload, this process was
      // killed), as an embedded cell sweeps at its start: on a remote server they stayed for ever,
      // counted in storage_bytes. Only this tenant's databases (a server may hold others').
      const dbs = this.#opts.databasesOf?.(tenant.slug) ?? [];
      if (dbs.length) this.#sweepStages(tenant.slug, e, dbs);
    } else {
      const m = this.#opts.metrics;
      e = new EmbeddedCell({
        tenant: tenant.slug,
        dir: this.cellDir(tenant.slug),
        backupsDir: this.backupsDir(tenant.slug),
        idleMs: this.#opts.idleMs,
        healthMs: this.#opts.healthMs,
        log: this.#opts.log,
        onStart: () => {
          m.cellStarts.inc({ tenant: tenant.slug });
          m.cellsRunning.inc();
          // Stage tables of imports cut short by a crash (of no import this process runs).
          this.#sweepStages(tenant.slug, e!);
          this.#opts.onCellStart?.(tenant.slug, e!, this.cellDir(tenant.slug));
        },
        onCrash: () => m.cellCrashes.inc({ tenant: tenant.slug }),
        onStop: () => m.cellsRunning.dec(),
      });
    }
    this.#engines.set(tenant.slug, e);
    return e;
  }

  /** Drops the engine's stage tables of no import in progress (in `databases` only, when given), in the background. */
  #sweepStages(tenant: string, engine: Engine, databases?: string[]): void {
    const report = (what: 'finished' | 'not finished', table: string, err?: unknown) => {
      if (what === 'finished') this.#opts.log.warn('an import cut in its commit was finished (its rows were partly in)', { tenant, stage: table });
      else this.#opts.log.warn('an import cut in its commit could not be finished now; its stage is kept for the next start', { tenant, stage: table, err });
    };
    void sweepStageTables(engine, engine.kind === 'embedded' ? 0 : STAGE_SWEEP_AGE_S, databases, report).then(
      (dropped) => { if (dropped.length) this.#opts.log.warn('dropped stage tables of unfinished imports', { tenant, tables: dropped }); },
      (err: unknown) => this.#opts.log.warn('stage tables not swept', { tenant, err }),
    );
  }

  /** Embedded cells that are running now (for readiness and tests). */
  running(): Array<{ tenant: string; pid: number | undefined; sessions: number }> {
    const out: Array<{ tenant: string; pid: number | undefined; sessions: number }> = [];
    for (const [t, e] of this.#engines) if (e instanceof EmbeddedCell && e.running) out.push({ tenant: t, pid: e.pid, sessions: e.engineSessions ?? 1 });
    return out;
  }

  /**
   * Stops and drops a tenant's engine: its tenant was deleted (later calls on it say so), or its
   * placement `replaced` (later calls are retryable: the next request gets the new engine).
   */
  async forget(tenant: string, why: 'deleted' | 'replaced' = 'deleted'): Promise<void> {
    const e = this.#engines.get(tenant);
    this.#engines.delete(tenant);
    if (e instanceof EmbeddedCell) await e.close(why === 'deleted' ? 'deleted' : 'shutdown');
    else await e?.close();
  }

  async closeAll(): Promise<void> {
    this.#closed = true;
    await Promise.all([...this.#engines.values()].map((e) => e.close().catch(() => {})));
    this.#engines.clear();
  }
}
