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
