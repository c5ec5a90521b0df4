/**
 * Stage tables: every table an import creates beside a data source (the stage, the
 * quarantine stage, a partial replace's merge table, the old table of a RENAME swap)
 * ends in `__stage_<12 hex>`. Data source names cannot end that way (see the
 * registry's reserved names), so the suffix alone says a table is Roost's scratch.
 */
import crypto from 'node:crypto';
import type { Engine } from '../cells/engine.js';
import { quoteIdent, quoteString } from '../cells/engine.js';

/** Suffixes of this process's imports in progress: their stage tables are never swept. */
const live = new Set<string>();

/** A new stage suffix, held as this process's own until `stageDone`. */
export function newStageSuffix(): string {
  const s = `__stage_${crypto.randomBytes(6).toString('hex')}`;
  live.add(s);
  return s;
}

/** The import of `suffix` ended (its stage tables dropped, or handed to the later drops). */
export function stageDone(suffix: string): void {
  live.delete(suffix);
}

/** Is `name` a stage table of an import this process runs now? */
export function liveStage(name: string): boolean {
  const m = /__stage_[0-9a-f]{12}$/.exec(name);
  return m !== null && live.has(m[0]);
}

/** ClickHouse regular expression for a stage table's name. */
export const STAGE_TABLE_RE = '__stage_[0-9a-f]{12}$';

/**
 * The stage tables of `databases` (all user databases when none are given), optionally only
 * those whose metadata is older than `olderThanSeconds`.
 */
export async function stageTables(engine: Engine, opts: { databases?: string[]; olderThanSeconds?: number } = {}): Promise<Array<{ database: string; name: string }>> {
  const where = [`match(name, '${STAGE_TABLE_RE}')`, "database NOT IN ('system', 'information_schema', 'INFORMATION_SCHEMA')"];
  if (opts.databases) {
    if (opts.databases.length === 0) return [];
    where.push(`database IN (${opts.databases.map(quoteString).join(', ')})`);
  }
  if (opts.olderThanSeconds !== undefined) where.push(`metadata_modification_time < now() - ${Math.max(0, Math.floor(opts.olderThanSeconds))}`);
  const out = (await engine.exec(`SELECT database, name FROM system.tables WHERE ${where.join(' AND ')} ORDER BY database, name`, { format: 'TSV' })).toString('utf8');
  return out.split('\n').filter(Boolean).map((l) => { const [database, name] = l.split('\t'); return { database: database!, name: name! }; });
}

/**
 * Drops stage tables left behind by imports that never finished (a server or cell killed
 * mid-import): those older than `olderThanSeconds` (no import runs that long), and none of this
 * process's imports in progress (`liveStage`). Returns the tables dropped.
 */
export async function sweepStageTables(engine: Engine, olderThanSeconds: number, databases?: string[]): Promise<string[]> {
  const dropped: string[] = [];
  for (const t of await stageTables(engine, { olderThanSeconds, ...(databases ? { databases } : {}) })) {
    if (liveStage(t.name)) continue;
    await engine.exec(`DROP TABLE IF EXISTS ${quoteIdent(t.database)}.${quoteIdent(t.name)}`);
    dropped.push(`${t.database}.${t.name}`);
  }
  return dropped;
}
