import type { EmbeddedCell } from '../../src/cells/embedded.js';

/**
 * Fifteen rounds, each sending at once `failing` queries that fail after producing rows (chdb may
 * hand those rows to the next query of their session) and `quick` tagged ones, with `parallel`
 * given: how many failed as they should, and how many quick answers were not their own.
 */
export async function leftoverRounds(c: EmbeddedCell, failing: number, quick: number, parallel?: number): Promise<{ failed: number; wrong: number }> {
  await c.exec('CREATE TABLE default.leak (x UInt64) ENGINE = MergeTree ORDER BY x');
  await c.exec('INSERT INTO default.leak SELECT number FROM system.numbers LIMIT 300000');
  const text = async (sql: string) => {
    const parts: Buffer[] = [];
    for await (const b of await c.query(sql, { format: 'CSV', ...(parallel ? { parallel } : {}) })) parts.push(b);
    return Buffer.concat(parts).toString();
  };
  let wrong = 0;
  let failed = 0;
  for (let round = 0; round < 15; round++) {
    const bad = Array.from({ length: failing }, () => text('SELECT x, throwIf(x > 150000) FROM default.leak ORDER BY x').then(() => 'answered', (e) => (e as { code?: string }).code));
    const good = Array.from({ length: quick }, (_, k) => text(`SELECT ${round * 10 + k} AS k`));
    const outcomes = await Promise.all([...bad, ...good]);
    failed += outcomes.slice(0, failing).filter((b) => b === 'QUERY_FAILED').length;
    outcomes.slice(failing).forEach((a, k) => { if (a !== `${round * 10 + k}\n`) wrong++; });
  }
  return { failed, wrong };
}
