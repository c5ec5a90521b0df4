/**
 * Empty definition files in the engine's directory, made loadable before the engine opens it.
 *
 * On a full disk ClickHouse (chdb 26.7) answered `CREATE DATABASE` — and, on some filesystems,
 * `CREATE TABLE` — with success and left its definition file (`metadata/<db>.sql`,
 * `metadata/<db>/<table>.sql`) empty. The engine then refused to start on that directory for good
 * ("Empty query: while loading database …"): every request of the tenant, reads included, was a
 * 503 until someone edited the files by hand. The cell refuses such statements while its disk is
 * nearly full (cell-main.ts, refuseDdlOnFullDisk); a disk filled by something else between that
 * check and the write can still leave an empty file, so a cell, before it opens its engine:
 *
 * - writes an empty database definition again: an Atomic database (all Roost makes) whose UUID is
 *   the one its directory link (`metadata/<db>` → `store/<xyz>/<uuid>`) names, or a new one when
 *   it has none (nothing was made in it). The cell's own scratch database is made again at start:
 *   its empty definition is removed.
 * - moves an empty table definition aside as `<table>.empty-<ms>.sql.bak` (the engine skips
 *   `.sql.bak` files): the table is gone for the engine, and its data source says so when used.
 *   Rows inserted into it before the restart (the running engine kept the table in memory) stay
 *   in its directory under `store/`, named in the cell's message, which the engine leaves for 30
 *   days. The cell lists it in `<cell>/reattach.json`, and the server, once the cell is up,
 *   attaches it again with its data source's definition (`ATTACH TABLE … UUID …`, see
 *   registry.ts reattachTable): its rows are back. The free-space floor (`ROOST_ENGINE_MIN_FREE_MB`, 0 turns it off) is what keeps such a
 *   definition from being written at all.
 *
 * Each repair is said on stderr by the caller. A definition that is not empty is never touched.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

export interface MetadataRepair {
  /** Database definitions written again (`uuid`: from its directory link, or new). */
  databases: Array<{ database: string; uuid: string; linked: boolean }>;
  /** Empty definitions removed (the cell's scratch database, made again at start). */
  removed: string[];
  /** Empty table definitions moved aside; `data`: where its parts stay (from the database's link to the table's directory), if known. */
  tables: Array<{ database: string; table: string; movedTo: string; data?: string }>;
}

const UUID = /([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\/?$/;

function empty(file: string): boolean {
  try {
    const st = fs.statSync(file);
    if (!st.isFile()) return false;
    if (st.size === 0) return true;
    if (st.size > 4096) return false;
    return fs.readFileSync(file, 'utf8').trim() === '';
  } catch {
    return false;
  }
}

/** Writes `text` to `file` durably: a temporary file (`<file>.tmp`; a definition's `.sql.tmp` the engine removes at load if a kill leaves it), synced, renamed. */
function writeDurable(file: string, text: string, mode = 0o644): void {
  const tmp = `${file}.tmp`;
  const fd = fs.openSync(tmp, 'w', mode);
  try {
    fs.writeSync(fd, text);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
}

/** Repairs empty definition files under `dbDir` (the engine must not be open on it). */
export function repairEmptyMetadata(dbDir: string, scratchDatabase: string): MetadataRepair {
  const out: MetadataRepair = { databases: [], removed: [], tables: [] };
  const meta = path.join(dbDir, 'metadata');
  let entries: string[];
  try { entries = fs.readdirSync(meta); } catch { return out; }
  for (const f of entries) {
    if (!f.endsWith('.sql')) continue;
    const database = f.slice(0, -4);
    const file = path.join(meta, f);
    if (!empty(file)) continue;
    if (database === scratchDatabase) {
      fs.rmSync(file, { force: true });
      out.removed.push(database);
      continue;
    }
    let target: string | undefined;
    try { target = fs.readlinkSync(path.join(meta, database)); } catch { target = undefined; }
    const linked = UUID.exec(target ?? '')?.[1];
    const uuid = linked ?? crypto.randomUUID();
    writeDurable(file, `ATTACH DATABASE _ UUID '${uuid}'\nENGINE = Atomic\n`);
    out.databases.push({ database, uuid, linked: linked !== undefined });
  }
  // Table definitions: in each database's directory (a link into store/ for Atomic databases).
  for (const d of fs.readdirSync(meta, { withFileTypes: true })) {
    const dir = path.join(meta, d.name);
    let files: string[];
    try {
      if (!fs.statSync(dir).isDirectory()) continue;
      files = fs.readdirSync(dir);
    } catch { continue; }
    for (const t of files) {
      if (!t.endsWith('.sql') || !empty(path.join(dir, t))) continue;
      const movedTo = `${t.slice(0, -4)}.empty-${Date.now()}.sql.bak`;
      fs.renameSync(path.join(dir, t), path.join(dir, movedTo));
      let data: string | undefined;
      try { data = fs.realpathSync(path.join(dbDir, 'data', d.name, t.slice(0, -4))); } catch { data = undefined; }
      out.tables.push({ database: d.name, table: t.slice(0, -4), movedTo, ...(data ? { data } : {}) });
      const uuid = data ? UUID.exec(data)?.[1] : undefined;
      if (uuid) addReattach(path.dirname(dbDir), { database: d.name, table: t.slice(0, -4), uuid });
    }
  }
  return out;
}

/** A table to attach again from its data source's definition: what the server does at the cell's start (`<cell>/reattach.json`). */
export interface Reattach { database: string; table: string; uuid: string }

export const REATTACH_FILE = 'reattach.json';

export function readReattach(cellDir: string): Reattach[] {
  try {
    const v = JSON.parse(fs.readFileSync(path.join(cellDir, REATTACH_FILE), 'utf8')) as unknown;
    return Array.isArray(v) ? v.filter((x): x is Reattach => !!x && typeof x.database === 'string' && typeof x.table === 'string' && typeof x.uuid === 'string') : [];
  } catch {
    return [];
  }
}

/** Writes the list (durably: a temporary file, synced, renamed); an empty list removes the file. */
export function writeReattach(cellDir: string, list: Reattach[]): void {
  const file = path.join(cellDir, REATTACH_FILE);
  if (!list.length) { fs.rmSync(file, { force: true }); return; }
  writeDurable(file, JSON.stringify(list), 0o600);
}

function addReattach(cellDir: string, r: Reattach): void {
  const list = readReattach(cellDir).filter((x) => !(x.database === r.database && x.table === r.table));
  writeReattach(cellDir, [...list, r]);
}
