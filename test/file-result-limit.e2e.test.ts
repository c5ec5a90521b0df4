/**
 * Whole-file result formats (Parquet, Arrow, ORC, Avro) are built on the embedded cell's spool
 * disk before the first byte is sent. Their uncompressed size is capped by
 * ROOST_MAX_FILE_RESULT_BYTES, so one call cannot fill the disk that every tenant shares; the
 * streamed formats are not capped. Real server, real embedded engine, real HTTP.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Session } from 'chdb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startServer, type RunningServer } from './helpers/server.js';

const CAP = 4 * 1024 * 1024;
let srv: RunningServer;
let token: string;

const sql = (q: string) => call(`${srv.url}/v0/sql?q=${encodeURIComponent(q)}`, { token });
/**
 * Result files left in the tenant's spool. Only `result-*`: the spool also holds the files of
 * inserts in progress (`insert-*`), and the server's own service-log writes into this cell run
 * at any moment, so one of those may be there while a test looks (CI saw one).
 */
const spoolFiles = (): string[] => {
  const dir = path.join(srv.dataDir, 'cells', 'local', 'spool');
  return fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.startsWith('result-')) : [];
};

beforeAll(async () => {
  srv = await startServer({ env: { ROOST_MAX_FILE_RESULT_BYTES: String(CAP) } });
  token = (await call(`${srv.url}/tokens`)).body.workspace_admin_token;
  const r = await call(`${srv.url}/v0/pipes`, {
    method: 'POST', token, headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ name: 'wide', nodes: [{ name: 'n', type: 'endpoint', sql: "SELECT number, repeat(toString(number % 10), 100) AS s FROM numbers(100000)" }] }),
  });
  expect(r.status, r.text).toBe(200);
}, 90_000);
afterAll(async () => { await srv?.stop(); });

describe('the cap on whole-file results', () => {
  it('a Parquet result over the cap is a 422 that says what to do instead, and leaves nothing on disk', async () => {
    // ~11 MB uncompressed (8 + 8 + 101 bytes a row; not a constant, which the engine counts once): past the 4 MiB cap.
    const r = await sql("SELECT number, repeat(toString(number % 10), 100) AS s FROM numbers(100000) FORMAT Parquet");
    expect(r.status, r.text).toBe(422);
    expect(r.body.code).toBe('LIMIT_EXCEEDED');
    expect(r.body.error).toContain(`passed the limit of ${CAP} bytes`);
    expect(r.body.error).toContain('ROOST_MAX_FILE_RESULT_BYTES');
    expect(r.body.error).toContain('.csv or .ndjson');
    expect(spoolFiles()).toEqual([]);
  });

  it('the same through a pipe endpoint (.parquet), while .csv of that endpoint streams every row', async () => {
    const pq = await call(`${srv.url}/v0/pipes/wide.parquet`, { token });
    expect(pq.status, pq.text).toBe(422);
    expect(pq.body.code).toBe('LIMIT_EXCEEDED');
    const csv = await call(`${srv.url}/v0/pipes/wide.csv`, { token });
    expect(csv.status).toBe(200);
    expect(csv.text.trimEnd().split('\n')).toHaveLength(100_001); // header + rows
    expect(spoolFiles()).toEqual([]);
  });

  it('a Parquet result under the cap but too big to be buffered is written to the spool and sent whole', async () => {
    // 3,000,000 bytes uncompressed: over the cell's 2 MiB buffered-result size, under the cap.
    const r = await fetch(`${srv.url}/v0/sql?q=${encodeURIComponent('SELECT number FROM numbers(375000) FORMAT Parquet')}`, { headers: { Authorization: `Bearer ${token}` } });
    expect(r.status).toBe(200);
    const file = Buffer.from(await r.arrayBuffer());
    expect(file.subarray(0, 4).toString()).toBe('PAR1');
    expect(file.subarray(-4).toString()).toBe('PAR1');
    // The file itself, read back by chdb in this process: every row is there.
    const f = path.join(srv.dataDir, 'back.parquet');
    fs.writeFileSync(f, file);
    const reader = new Session(path.join(srv.dataDir, 'reader'));
    try {
      const back = (await reader.queryAsync(`SELECT count() AS c, sum(number) AS s FROM file('${f}', Parquet)`, { format: 'TSV' })).text();
      expect(back).toBe('375000\t70312312500\n');
    } finally {
      reader.close();
    }
    expect(spoolFiles()).toEqual([]);
  });

  it('the next query of the tenant gets its own answer', async () => {
    const r = await sql("SELECT 'clean' AS x FORMAT CSV");
    expect(r.status).toBe(200);
    expect(r.text).toBe('"clean"\n');
  });
});
