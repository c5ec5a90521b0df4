/**
 * An append's commit, `ALTER TABLE <data source> ATTACH PARTITION tuple() FROM <stage>`, is one
 * statement but not one step: the engine links the stage's parts into the table one rename at a
 * time. A cell killed in between left part of the rows stored (192,216 of 400,000 in a review's
 * trial), and the stage was then dropped: neither "stored" nor "not stored" was true, and the
 * 502's advice (count the rows) found a part. The quarantine's commit is the same statement, and
 * a retry that saw some of its rows took it for done (200 with quarantined counts that were not
 * all there).
 *
 * The attached parts are the stage's own files, hard-linked: a stage part whose `checksums.txt`
 * is the same file (inode) as one of the table's parts — active, or outdated by a merge since,
 * which keeps its files for minutes — is in. So the commit can be finished: the parts in are
 * dropped from the stage and the rest attached. Embedded engines only (the files are on this
 * machine); a remote server keeps the unknown outcome.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Engine } from '../cells/engine.js';
import { quoteIdent, quoteString } from '../cells/engine.js';

export type AttachState = 'none' | 'all' | 'finished';

/** An import's commit: every part of `stage` linked into `table` (one statement, not one step). */
export function attachSql(database: string, table: string, stage: string): string {
  return `ALTER TABLE ${quoteIdent(database)}.${quoteIdent(table)} ATTACH PARTITION tuple() FROM ${quoteIdent(database)}.${quoteIdent(stage)}`;
}

async function partsOf(engine: Engine, database: string, table: string, activeOnly: boolean): Promise<Array<{ name: string; path: string }>> {
  const out = (await engine.exec(`SELECT name, path FROM system.parts WHERE database = ${quoteString(database)} AND table = ${quoteString(table)}${activeOnly ? ' AND active' : ''} FORMAT TSV`)).toString('utf8');
  return out.split('\n').filter(Boolean).map((l) => { const [name, p] = l.split('\t'); return { name: name!, path: p! }; });
}

function inode(partPath: string): number | undefined {
  try { return fs.statSync(path.join(partPath, 'checksums.txt')).ino; } catch { return undefined; }
}

/** Which of the stage's parts are in the table (see above). */
export async function attachedParts(engine: Engine, database: string, table: string, stage: string): Promise<{ attached: string[]; rest: string[] }> {
  const inTable = new Set<number>();
  for (const p of await partsOf(engine, database, table, false)) {
    const i = inode(p.path);
    if (i !== undefined) inTable.add(i);
  }
  const attached: string[] = [];
  const rest: string[] = [];
  for (const p of await partsOf(engine, database, stage, true)) {
    const i = inode(p.path);
    (i !== undefined && inTable.has(i) ? attached : rest).push(p.name);
  }
  return { attached, rest };
}

/**
 * Finishes the attach of `stage` into `table` that a kill may have cut: 'none' when no part of
 * it is in (the commit did not start: the caller decides), 'all' when every part is, 'finished'
 * when some were and the rest are now. The stage's merges are stopped first (a merge would give
 * its parts new files); the stage is left to the caller to drop.
 */
export async function finishAttach(engine: Engine, database: string, table: string, stage: string): Promise<AttachState> {
  const q = (t: string) => `${quoteIdent(database)}.${quoteIdent(t)}`;
  await engine.exec(`SYSTEM STOP MERGES ${q(stage)}`);
  const { attached, rest } = await attachedParts(engine, database, table, stage);
  if (attached.length === 0) return 'none';
  if (rest.length === 0) return 'all';
  for (const p of attached) await engine.exec(`ALTER TABLE ${q(stage)} DROP PART ${quoteString(p)}`);
  await engine.exec(attachSql(database, table, stage));
  return 'finished';
}
