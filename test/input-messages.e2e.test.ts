/**
 * Hostile or odd inputs get errors that say what is wrong (a black-box round on hostile input):
 * a JSON body with a byte-order mark is read, an array where an object is due says so, a CSV
 * header of thousands of names does not make an error of hundreds of KB, and a schema too large
 * for the engine says that rather than blaming a DEFAULT expression. Real server, real engine.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startServer, type RunningServer } from './helpers/server.js';

let srv: RunningServer;
let tok: string;
beforeAll(async () => {
  srv = await startServer();
  tok = (await call(`${srv.url}/tokens`)).body.workspace_admin_token;
}, 60_000);
afterAll(async () => { await srv?.stop(); });

describe('input messages', () => {
  it('a JSON body with a UTF-8 byte-order mark is read; an array body is "must be a JSON object"', async () => {
    const body = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(JSON.stringify({ name: 'bom_pipe', nodes: [{ name: 'n', sql: 'SELECT 1 AS one' }] }))]);
    const r = await call(`${srv.url}/v0/pipes`, { method: 'POST', token: tok, body, headers: { 'Content-Type': 'application/json' } });
    expect(r.status, r.text).toBe(200);
    const a = await call(`${srv.url}/v0/pipes`, { method: 'POST', token: tok, body: '[{"name": "x"}]', headers: { 'Content-Type': 'application/json' } });
    expect(a.status, a.text).toBe(400);
    expect(a.body).toMatchObject({ code: 'INVALID_JSON', error: 'the body must be a JSON object {name, description?, nodes: [...]}' });
  });

  it('a CSV header of 5,000 names that does not match: a short error, the names found cut to 100', async () => {
    expect((await call(`${srv.url}/v0/datasources?name=two&schema=${encodeURIComponent('a Int32, b String')}`, { method: 'POST', token: tok })).status).toBe(200);
    const header = Array.from({ length: 5000 }, (_, i) => `column_number_${i}`).join(',');
    const r = await call(`${srv.url}/v0/datasources?name=two&mode=append`, { method: 'POST', token: tok, body: `${header}\n1,x\n`, headers: { 'Content-Type': 'text/csv' } });
    expect(r.status, r.text.slice(0, 300)).toBe(400);
    expect(r.body.code).toBe('HEADER_MISMATCH');
    expect(r.text.length).toBeLessThan(8_000);
    expect(r.body.error).toMatch(/^CSV header does not match the schema: expected \[a, b\], found \[column_number_0, /);
    expect(r.body.error).toMatch(/… \(5000 names found\) \(nothing was stored\)/);
    expect(r.body.found).toHaveLength(101);
    expect(r.body.found[100]).toBe('… 4900 more');
  });

  it('a schema too large for the engine says so', async () => {
    const n = 20_000;
    const header = Array.from({ length: n }, (_, i) => `a_rather_long_column_name_${i}`).join(',');
    const row = Array.from({ length: n }, (_, i) => String(i)).join(',');
    const r = await call(`${srv.url}/v0/datasources?name=wide`, { method: 'POST', token: tok, body: `${header}\n${row}\n`, headers: { 'Content-Type': 'text/csv' } });
    expect(r.status, r.text.slice(0, 300)).toBe(400);
    expect(r.body).toMatchObject({ code: 'SCHEMA_SYNTAX', error: 'the schema is too large for the engine (its CREATE statement is over 256 KiB): use fewer columns, or shorter names and types' });
  }, 60_000);
});
