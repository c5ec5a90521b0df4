/**
 * Roost's own tables on older remote servers: types a server lacks are replaced
 * by the nearest it has (DateTime64 → DateTime before 20.1, Map → JSON text
 * before 21.1). The embedded engine is always current and passes through.
 */
import type { Engine } from './engine.js';
import { ClickHouseEngine } from './clickhouse.js';

export async function compatColumns(engine: Engine, columns: string): Promise<string> {
  if (!(engine instanceof ClickHouseEngine)) return columns;
  const f = await engine.features();
  let out = columns;
  if (!f.dateTime64) out = out.replace(/DateTime64\(\d+(?:,\s*('[^']*'))?\)/g, (_m, tz: string | undefined) => (tz ? `DateTime(${tz})` : 'DateTime'));
  if (!f.mapType) out = out.replace(/Map\(String,\s*String\)/g, 'String');
  return out;
}

/** Whether Map columns of Roost's tables hold JSON text on this engine. */
export async function mapsAsText(engine: Engine): Promise<boolean> {
  return engine instanceof ClickHouseEngine && !(await engine.features()).mapType;
}
