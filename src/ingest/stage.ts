/**
 * Stage tables: every table an import creates beside a data source (the stage, the
 * quarantine stage, a partial replace's merge table, the old table of a RENAME swap)
 * ends in `__stage_<12 hex>`. Data source names cannot end that way (see the
 * registry's reserved names), so the suffix alone says a table is Roost's scratch.
 */
import crypto from 'node:crypto';
import type { Engine } from '../cells/engine.js';
import { dropTableSql, quoteIdent, quoteString } from '../cells/engine.js';
import { attachSql, finishAttach } from './attach-repair.js';

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

/**
 * The comment a full or partial replace puts on its incoming table just before the switch
 * (EXCHANGE TABLES): the comment moves with the table, so the data source's table carrying it
 * tells the sweep that the switch ran before a kill, and the replace's quarantine stage is to be
 * attached (its rows were rejected by a replace that happened). Cleared once the quarantine is in.
 */
export function replaceMark(suffix: string): string {
  return `roost replace ${suffix}`;
}

/** Clears the data source's table's replace mark; a failure (a disk under the floor) is left: a mark names a stage no longer there. */
export async function clearReplaceMark(engine: Engine, database: string, table: string): Promise<void> {
  await engine.exec(`ALTER TABLE ${quoteIdent(database)}.${quoteIdent(table)} MODIFY COMMENT ''`).catch(() => {});
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
export async function sweepStageTables(engine: Engine, olderThanSeconds: number, databases?: string[], report?: (what: 'finished' | 'not finished', table: string, err?: unknown) => void): Promise<string[]> {
  const dropped: string[] = [];
  const stages = (await stageTables(engine, { olderThanSeconds, ...(databases ? { databases } : {}) })).filter((t) => !liveStage(t.name));
  // An append's commit cut by a kill (server or cell) is finished before its stage goes (see
  // attach-repair.ts): data stages first, so that the quarantine stage of an import whose rows
  // went in follows them (its rejected rows were to be stored with them).
  const committed = new Set<string>();
  const failed = new Set<string>();
  // Data source tables a replace's switch reached (their mark cleared once the sweep is done).
  const replaced: Array<{ database: string; table: string; suffix: string }> = [];
  const quarantine = (name: string) => name.slice(0, -STAGE_SUFFIX_LENGTH).endsWith('_quarantine');
  for (const t of [...stages.filter((x) => !quarantine(x.name)), ...stages.filter((x) => quarantine(x.name))]) {
    const key = `${t.database}.${t.name}`;
    // Another sweep (a cell started again meanwhile) at the same stage: its own to finish.
    if (sweeping.has(key)) continue;
    sweeping.add(key);
    try {
      if (engine.kind === 'embedded') {
        const suffix = t.name.slice(-STAGE_SUFFIX_LENGTH);
        // The data stage of this import could not be finished: its quarantine stage waits with it.
        if (quarantine(t.name) && failed.has(`${t.database}\0${suffix}`)) continue;
        const table = t.name.slice(0, -STAGE_SUFFIX_LENGTH);
        try {
          if (await tableExists(engine, t.database, table)) {
            let state = await finishAttach(engine, t.database, table, t.name);
            if (state === 'none' && quarantine(t.name) && committed.has(`${t.database}\0${suffix}`)) {
              await engine.exec(attachSql(t.database, table, t.name));
              state = 'finished';
            }
            if (state !== 'none' && !quarantine(t.name)) committed.add(`${t.database}\0${suffix}`);
            // A replace's stage (its rows were never attached): did its switch run before the kill?
            if (state === 'none' && !quarantine(t.name) && (await tableComment(engine, t.database, table)) === replaceMark(suffix)) {
              committed.add(`${t.database}\0${suffix}`);
              replaced.push({ database: t.database, table, suffix });
            }
            if (state === 'finished') report?.('finished', key);
          }
        } catch (e) {
          // Left for the next start rather than dropped half-attached.
          if (!quarantine(t.name)) failed.add(`${t.database}\0${suffix}`);
          report?.('not finished', key, e);
          continue;
        }
      }
      await engine.exec(dropTableSql(engine, `${quoteIdent(t.database)}.${quoteIdent(t.name)}`));
      dropped.push(key);
    } finally {
      sweeping.delete(key);
    }
  }
  // Only a mark that is still this sweep's (a replace since may have put its own).
  for (const r of replaced) {
    if ((await tableComment(engine, r.database, r.table).catch(() => '')) === replaceMark(r.suffix)) await clearReplaceMark(engine, r.database, r.table);
  }
  return dropped;
}

/** Stages a sweep of this process is at now. */
const sweeping = new Set<string>();

/** `__stage_` and 12 hex digits. */
const STAGE_SUFFIX_LENGTH = 20;

async function tableComment(engine: Engine, database: string, table: string): Promise<string> {
  return (await engine.exec(`SELECT comment FROM system.tables WHERE database = ${quoteString(database)} AND name = ${quoteString(table)} FORMAT TSVRaw`)).toString().replace(/\n$/, '');
}

async function tableExists(engine: Engine, database: string, table: string): Promise<boolean> {
  return (await engine.exec(`SELECT count() FROM system.tables WHERE database = ${quoteString(database)} AND name = ${quoteString(table)} FORMAT TSV`)).toString().trim() !== '0';
}
