/** DDL that gives a workspace its place in the tenant's engine. */
import type { Engine } from '../src/cells/engine.js';
import { quoteIdent } from '../src/cells/engine.js';
import { ClickHouseEngine } from '../src/cells/clickhouse.js';

function onCluster(engine: Engine): string {
  return engine instanceof ClickHouseEngine && engine.cluster ? ` ON CLUSTER ${quoteIdent(engine.cluster)}` : '';
}

export async function createWorkspaceDatabase(engine: Engine, database: string): Promise<void> {
  await engine.exec(`CREATE DATABASE IF NOT EXISTS ${quoteIdent(database)}${onCluster(engine)}`);
}

export async function dropWorkspaceDatabase(engine: Engine, database: string): Promise<void> {
  await engine.exec(`DROP DATABASE IF EXISTS ${quoteIdent(database)}${onCluster(engine)}`);
}

/** Databases created for a workspace whose state is not written yet (see sweepUnnamedDatabases). */
const creating = new Set<string>();

/** Marks `database` as being created for a new workspace until the answer is called. */
export function holdNewDatabase(database: string): () => void {
  creating.add(database);
  return () => { creating.delete(database); };
}

/** A workspace database, as tenants/registry.ts names them (`_r<6 hex>` once restored). */
const WORKSPACE_DATABASE = /^ws_.+_[0-9a-f]{8}(_r[0-9a-f]{6})?$/;

/**
 * Drops the workspace databases of an embedded cell that no workspace of its tenant names
 * (`named`) and that are not being created: left by a server killed between a workspace's
 * delete and its database's drop, or in a restore's last step (after its switch, before the
 * old databases were dropped). Invisible otherwise, they kept their disk space and counted
 * against the tenant's storage limit. Embedded cells only: a remote server may hold other
 * tenants' databases. Called with no backup or restore of the tenant running.
 */
export async function sweepUnnamedDatabases(engine: Engine, named: () => Set<string>): Promise<string[]> {
  if (engine.kind !== 'embedded') return [];
  const out = (await engine.exec('SELECT name FROM system.databases FORMAT JSONEachRow', { format: 'JSONEachRow' })).toString('utf8');
  const dropped: string[] = [];
  for (const line of out.split('\n')) {
    if (!line.trim()) continue;
    const db = (JSON.parse(line) as { name: string }).name;
    // The names are read now, after the listing: a workspace created (and released) while the
    // listing ran is named by then; a set taken before the listing did not name it.
    if (!WORKSPACE_DATABASE.test(db) || creating.has(db) || named().has(db)) continue;
    await dropWorkspaceDatabase(engine, db);
    dropped.push(db);
  }
  return dropped;
}
