import { ClickHouseEngine } from '../src/cells/clickhouse.js';
import { versionAtLeast } from '../src/cells/engine.js';
import { runEngineConformance } from './engine-conformance.js';
import { requireClickHouse, startClickHouse } from './helpers/clickhouse-server.js';

runEngineConformance('remote ClickHouse (Debian clickhouse-server)', async () => {
  if (!requireClickHouse()) return undefined;
  const server = await startClickHouse();
  const engine = new ClickHouseEngine({ url: server.url, user: server.user, password: server.password });
  await engine.exec('CREATE DATABASE IF NOT EXISTS conf');
  const v = await engine.version();
  const missing: Record<string, string> = {};
  if (!versionAtLeast(v, 20, 5)) missing.getSetting = `getSetting() arrived in ClickHouse 20.5; this server is ${v}`;
  return { engine, database: 'conf', missing, teardown: async () => { await engine.close(); await server.stop(); } };
});
