/**
 * The engine's insert deduplication log, made true again before the engine opens it.
 *
 * A MergeTree table with `non_replicated_deduplication_window` (every data source and quarantine
 * table on a cell, see createTables) remembers the block id of each insert's part in
 * `deduplication_logs/deduplication_log_<n>.txt`, one record a line: `<op>\t<part>\t<block id>`
 * (op 1 adds, 2 forgets). The engine writes that record to the file *before* it renames the
 * part's `tmp_insert_*` directory to the part's name, and at start it loads the log without
 * looking at the parts. A cell killed between the two leaves a record of a part that is gone
 * (the temporary directory is removed at load), and the same insert sent again with its token —
 * what Roost does for a group commit or an events-buffer flush whose answer was lost with the
 * cell — is dropped as a duplicate of rows that were never stored: acknowledged rows lost.
 *
 * So a cell, before it opens its engine (and only once no other process holds the directory),
 * reads each table's log and appends a forgetting record for every remembered block whose part
 * no part on disk covers (same partition, a block range containing it: merges and mutations keep
 * covering their sources). A log this code does not fully understand (another op, a line of
 * another shape) is left alone. A last line cut short (a kill inside the write) is removed: it
 * names no committed part. See docs/decisions.md, "Twenty-third session".
 */
import fs from 'node:fs';
import path from 'node:path';

export interface DedupRepair {
  /** Tables whose deduplication log was read. */
  tables: number;
  /** Blocks forgotten: their part is not on disk. */
  forgotten: Array<{ table: string; part: string; block: string }>;
  /** Tables left alone, and why. */
  skipped: Array<{ table: string; reason: string }>;
}

const LOG_NAME = /^deduplication_log_(\d+)\.txt$/;
/** `<partition>_<min block>_<max block>_<level>[_<mutation>]`; partition ids hold no `_`. */
const PART_NAME = /^([^_]+)_(\d+)_(\d+)_(\d+)(?:_(\d+))?$/;

interface BlockRange { partition: string; min: bigint; max: bigint }

function parsePart(name: string): BlockRange | undefined {
  const m = PART_NAME.exec(name);
  return m ? { partition: m[1]!, min: BigInt(m[2]!), max: BigInt(m[3]!) } : undefined;
}

/** The table directories under an engine directory (`store/<xyz>/<uuid>/`, and `data/<db>/<t>/` of Ordinary databases). */
function tableDirs(dbDir: string): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  const two = (root: string) => {
    let first: fs.Dirent[];
    try { first = fs.readdirSync(root, { withFileTypes: true }); } catch { return; }
    for (const a of first) {
      if (!a.isDirectory()) continue;
      let second: fs.Dirent[];
      try { second = fs.readdirSync(path.join(root, a.name), { withFileTypes: true }); } catch { continue; }
      for (const b of second) {
        // Atomic databases' data/<db>/<t> entries are links into store/: seen once.
        const dir = path.join(root, a.name, b.name);
        if (!b.isDirectory() || !fs.existsSync(path.join(dir, 'deduplication_logs'))) continue;
        const real = fs.realpathSync(dir);
        if (seen.has(real)) continue;
        seen.add(real);
        out.push(real);
      }
    }
  };
  two(path.join(dbDir, 'store'));
  two(path.join(dbDir, 'data'));
  return out;
}

/** Repairs the deduplication logs of every table under `dbDir` (the engine must not be open on it). */
export function repairDeduplicationLogs(dbDir: string): DedupRepair {
  const result: DedupRepair = { tables: 0, forgotten: [], skipped: [] };
  for (const dir of tableDirs(dbDir)) {
    const logsDir = path.join(dir, 'deduplication_logs');
    const logs = fs.readdirSync(logsDir)
      .map((f) => ({ f, n: Number(LOG_NAME.exec(f)?.[1] ?? NaN) }))
      .filter((l) => Number.isFinite(l.n))
      .sort((a, b) => a.n - b.n);
    if (!logs.length) continue;
    result.tables++;
    const table = path.basename(dir);
    // Replayed as the engine loads it: an add remembers the block's part, a forget erases it.
    const remembered = new Map<string, string>();
    let understood = true;
    for (const [i, { f }] of logs.entries()) {
      const file = path.join(logsDir, f);
      let text = fs.readFileSync(file, 'latin1');
      if (text.length && !text.endsWith('\n')) {
        if (i !== logs.length - 1) { understood = false; result.skipped.push({ table, reason: `${f} ends inside a record` }); break; }
        // The record the kill cut: its part was not renamed yet (that comes after the write).
        const keep = text.lastIndexOf('\n') + 1;
        fs.truncateSync(file, keep);
        text = text.slice(0, keep);
      }
      for (const line of text.split('\n')) {
        if (!line) continue;
        const [op, part, block, extra] = line.split('\t');
        if (extra !== undefined || !part || !block || (op !== '1' && op !== '2')) {
          understood = false;
          result.skipped.push({ table, reason: `a record of another shape in ${f}: ${JSON.stringify(line.slice(0, 80))}` });
          break;
        }
        if (op === '1') remembered.set(block, part);
        else remembered.delete(block);
      }
      if (!understood) break;
    }
    if (!understood || !remembered.size) continue;
    const onDisk: BlockRange[] = [];
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const r = e.isDirectory() ? parsePart(e.name) : undefined;
      if (r) onDisk.push(r);
    }
    const lost: string[] = [];
    for (const [block, part] of remembered) {
      const p = parsePart(part);
      if (!p) { result.skipped.push({ table, reason: `a part name of another shape: ${JSON.stringify(part)}` }); lost.length = 0; break; }
      const covered = onDisk.some((d) => d.partition === p.partition && d.min <= p.min && d.max >= p.max);
      if (!covered) lost.push(`2\t${part}\t${block}\n`);
    }
    if (!lost.length) continue;
    // Appended to the newest log, as the engine itself forgets a block; then synced, so a
    // power loss right after cannot bring the stale record back beside new parts.
    const fd = fs.openSync(path.join(logsDir, logs[logs.length - 1]!.f), 'a');
    try {
      fs.writeSync(fd, lost.join(''));
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    for (const l of lost) {
      const [, part, block] = l.trimEnd().split('\t');
      result.forgotten.push({ table, part: part!, block: block! });
    }
  }
  return result;
}
