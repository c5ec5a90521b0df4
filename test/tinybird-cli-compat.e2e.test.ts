/**
 * Calls Tinybird's `tb` CLI makes, and what it reads of their answers: a data source drop's
 * dry run (sent before the CLI asks the user), datafiles as exactly `text/plain`, and
 * `present_pct` on every analysed column. Real server, real engine.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startServer, type RunningServer } from './helpers/server.js';

let srv: RunningServer;
let admin: string;
const api = (p: string, init: RequestInit = {}) => call(`${srv.url}${p}`, { ...init, token: admin });

beforeAll(async () => {
  srv = await startServer();
  admin = (await call(`${srv.url}/tokens`)).body.workspace_admin_token;
  for (const name of ['kept', 'lonely']) {
    const r = await api(`/v0/datasources?name=${name}&schema=${encodeURIComponent('id Int32, note String')}`, { method: 'POST' });
    expect(r.status, r.text).toBe(200);
  }
  const ins = await api('/v0/datasources?name=kept&mode=append', { method: 'POST', body: '1,a\n2,b\n', headers: { 'Content-Type': 'text/csv' } });
  expect(ins.status, ins.text).toBe(200);
  const pipe = await api('/v0/pipes', {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ name: 'reads_kept', nodes: [{ name: 'n', sql: 'SELECT count() AS c FROM kept', type: 'endpoint' }] }),
  });
  expect(pipe.status, pipe.text).toBe(200);
}, 120_000);

afterAll(async () => { await srv?.stop(); });

describe('DELETE /v0/datasources/<name>', () => {
  it('dry_run=true drops nothing and names the pipes that read it', async () => {
    const dry = await api('/v0/datasources/kept?force=false&dry_run=true', { method: 'DELETE' });
    expect(dry.status, dry.text).toBe(200);
    expect(dry.body).toMatchObject({ name: 'kept', deleted: false, dry_run: true, dependent_pipes: ['reads_kept'], dependent_views: [] });
    const still = await api('/v0/sql?q=' + encodeURIComponent('SELECT count() AS c FROM kept FORMAT CSV'));
    expect(still.text).toBe('2\n');
    const lonely = await api('/v0/datasources/lonely?dry_run=true', { method: 'DELETE' });
    expect(lonely.body).toMatchObject({ deleted: false, dependent_pipes: [] });
    expect((await api('/v0/datasources/lonely')).status).toBe(200);
  });

  it('force=true still refuses a data source pipes read, and says so; a flag that is no yes or no is a 400', async () => {
    const forced = await api('/v0/datasources/kept?force=true', { method: 'DELETE' });
    expect(forced.status).toBe(409);
    expect(forced.body.code).toBe('CONFLICT');
    expect(forced.body.error).toMatch(/force=true does not drop a data source pipes read/);
    const bad = await api('/v0/datasources/lonely?dry_run=maybe', { method: 'DELETE' });
    expect(bad.status).toBe(400);
    expect(bad.body.code).toBe('INVALID_PARAMETER');
    expect((await api('/v0/datasources/lonely')).status).toBe(200);
    const gone = await api('/v0/datasources/lonely?dry_run=false', { method: 'DELETE' });
    expect(gone.status, gone.text).toBe(200);
    expect(gone.body).toMatchObject({ name: 'lonely', deleted: true });
    expect((await api('/v0/datasources/lonely')).status).toBe(404);
  });
});

describe('datafiles and analysis as the CLI reads them', () => {
  it('.datasource and .pipe answer exactly text/plain', async () => {
    const ds = await api('/v0/datasources/kept.datasource');
    expect(ds.status).toBe(200);
    expect(ds.headers.get('content-type')).toBe('text/plain');
    expect(ds.text).toContain('SCHEMA >');
    const pipe = await api('/v0/pipes/reads_kept.pipe');
    expect(pipe.status).toBe(200);
    expect(pipe.headers.get('content-type')).toBe('text/plain');
    expect(pipe.text).toContain('SELECT count() AS c FROM kept');
  });

  it('a CSV analysis gives present_pct for every column: the share of sampled rows with a value (the tb CLI reads < 1 as nullable)', async () => {
    const r = await api('/v0/analyze', { method: 'POST', body: 'id,name,note\n1,a,\n2,,\n3,c,\\N\n4,d,x\n', headers: { 'Content-Type': 'text/csv' } });
    expect(r.status, r.text).toBe(200);
    expect(r.body.analysis.columns.map((c: { name: string; present_pct: number; nullable: boolean }) => [c.name, c.present_pct, c.nullable])).toEqual([
      ['id', 1, false], ['name', 0.75, true], ['note', 0.25, true],
    ]);
    // A row too short for a column is refused at import, not NULL there: it does not lower present_pct.
    const short = await api('/v0/analyze', { method: 'POST', body: 'a,b\n1\n2,3\n5,6\n', headers: { 'Content-Type': 'text/csv' } });
    expect(short.body.analysis.columns.map((c: { name: string; present_pct: number; nullable: boolean }) => [c.name, c.present_pct, c.nullable])).toEqual([['a', 1, false], ['b', 1, false]]);
  });
});

describe('jobs as tb job ls and tb job cancel call them', () => {
  it("GET /v0/jobs lists the credential's own jobs; others see none of them; cancel answers 409, not 404", async () => {
    await api('/v0/datasources?name=jobbed&schema=' + encodeURIComponent('id Int32'), { method: 'POST' });
    await api('/v0/datasources?name=jobbed&mode=append', { method: 'POST', body: '1\n2\n3\n', headers: { 'Content-Type': 'text/csv' } });
    const del = await api('/v0/datasources/jobbed/delete', { method: 'POST', body: new URLSearchParams({ delete_condition: 'id = 2' }) });
    expect(del.status, del.text).toBe(200);
    const id = del.body.job_id as string;
    const list = await api('/v0/jobs');
    expect(list.status, list.text).toBe(200);
    const mine = (list.body.jobs as Array<Record<string, unknown>>).find((j) => j.id === id);
    expect(mine).toMatchObject({ id, job_id: id, kind: 'delete_data', status: 'done', job_url: `/v0/jobs/${id}` });
    expect(typeof mine!.updated_at).toBe('string');
    // Another credential of the workspace did not start it and administers no tenant.
    const other = (await api('/v0/tokens?name=lister&scope=DATASOURCES:READ:jobbed', { method: 'POST' })).body.token as string;
    const theirs = await call(`${srv.url}/v0/jobs`, { token: other });
    expect(theirs.status).toBe(200);
    expect((theirs.body.jobs as Array<{ id: string }>).map((j) => j.id)).not.toContain(id);
    const cancel = await api(`/v0/jobs/${id}/cancel`, { method: 'POST' });
    expect(cancel.status).toBe(409);
    expect(cancel.body.code).toBe('CONFLICT');
    expect(cancel.body.error).toMatch(/is done: only a job still waiting can be cancelled/);
    expect((await call(`${srv.url}/v0/jobs/${id}/cancel`, { method: 'POST', token: other })).status).toBe(404);
    expect((await api('/v0/jobs/nope/cancel', { method: 'POST' })).status).toBe(404);
  });
});

describe('a data source created with a description (tb push sends the datafile\'s DESCRIPTION)', () => {
  it('keeps it, from the URL and from a form body', async () => {
    const a = await api(`/v0/datasources?name=described&schema=${encodeURIComponent('id Int32')}&description=${encodeURIComponent('Orders, one row each')}`, { method: 'POST' });
    expect(a.status, a.text).toBe(200);
    expect((await api('/v0/datasources/described')).body.description).toBe('Orders, one row each');
    const b = await api('/v0/datasources', { method: 'POST', body: new URLSearchParams({ name: 'described_form', schema: 'id Int32', description: 'From a form' }) });
    expect(b.status, b.text).toBe(200);
    expect((await api('/v0/datasources/described_form')).body.description).toBe('From a form');
    expect((await api('/v0/datasources/described_form.datasource')).text).toContain('DESCRIPTION >');
  });
});
