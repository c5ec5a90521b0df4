/**
 * A request answered 408 changes nothing, later either (a black-box round): the deadline's 408
 * was sent while an append's stage waited to be attached, or while a truncate waited for its data
 * source's lock, and the change was made afterwards (an append retried after its 408 stored its
 * rows twice; a truncate answered 408 emptied the table seconds later). Here the tenant's cell is
 * held (SIGSTOP) while both requests pass their 1.5 s deadline, then let go.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, childProcesses, startServer, type RunningServer } from './helpers/server.js';

let srv: RunningServer;
let token: string;
const enc = encodeURIComponent;
const post = (p: string, body?: string) => call(`${srv.url}${p}`, { method: 'POST', token, body, headers: { 'Content-Type': 'text/csv' } });
const count = async () => {
  const r = await call(`${srv.url}/v0/sql?q=${enc('SELECT count() FROM dl FORMAT TSV')}`, { token });
  expect(r.status, r.text).toBe(200);
  return Number(r.text.trim());
};

beforeAll(async () => {
  srv = await startServer({ env: { ROOST_REQUEST_TIMEOUT_MS: '1500' } });
  token = (await call(`${srv.url}/tokens`)).body.workspace_admin_token;
  expect((await post(`/v0/datasources?name=dl&schema=${enc('id Int32')}`)).status).toBe(200);
  expect((await post('/v0/datasources?name=dl&mode=append', '1\n2\n3\n')).status).toBe(200);
}, 120_000);
afterAll(async () => { await srv?.stop(); });

describe('the request deadline', () => {
  it('an append and a truncate answered 408 while the engine was held change nothing once it is back', async () => {
    expect(await count()).toBe(3);
    const cells = childProcesses(srv.proc.pid!, 'cell-main');
    expect(cells.length).toBeGreaterThan(0);
    for (const pid of cells) process.kill(pid, 'SIGSTOP');
    let append, truncate;
    try {
      const a = post('/v0/datasources?name=dl&mode=append', '4\n5\n');
      await new Promise((r) => setTimeout(r, 200));
      const t = post('/v0/datasources/dl/truncate');
      [append, truncate] = await Promise.all([a, t]);
    } finally {
      for (const pid of cells) process.kill(pid, 'SIGCONT');
    }
    expect(append.status, append.text).toBe(408);
    expect(truncate.status, truncate.text).toBe(408);
    // What they waited for runs now; neither may change the table.
    await new Promise((r) => setTimeout(r, 2_000));
    expect(await count()).toBe(3);
    const log = await call(`${srv.url}/v0/sql?q=${enc("SELECT event_type, result FROM tinybird.datasources_ops_log WHERE datasource_name = 'dl' AND event_type IN ('append', 'truncate') ORDER BY timestamp FORMAT JSON")}`, { token });
    expect(log.body.data.slice(1)).toEqual([{ event_type: 'append', result: 'error' }, { event_type: 'truncate', result: 'error' }]);
  });

  it('events with wait=true only queued for their group when the deadline passes get 408 and are not stored; those answered 200 are', async () => {
    expect((await call(`${srv.url}/v0/datasources?name=ev&schema=${enc('`id` Int32 `json:$.id`')}`, { method: 'POST', token })).status).toBe(200);
    const cells = childProcesses(srv.proc.pid!, 'cell-main');
    for (const pid of cells) process.kill(pid, 'SIGSTOP');
    let answers;
    try {
      const sends = [1, 2, 3].map((id) => call(`${srv.url}/v0/events?name=ev&wait=true`, { method: 'POST', token, body: `{"id":${id}}\n` }));
      await new Promise((r) => setTimeout(r, 2_500));
      for (const pid of cells) process.kill(pid, 'SIGCONT');
      answers = await Promise.all(sends);
    } finally {
      for (const pid of cells) process.kill(pid, 'SIGCONT');
    }
    expect(answers.map((a) => a.status).filter((s) => s === 408).length).toBeGreaterThanOrEqual(1);
    for (const a of answers) expect([200, 408]).toContain(a.status);
    await new Promise((r) => setTimeout(r, 1_000));
    const stored = await call(`${srv.url}/v0/sql?q=${enc('SELECT groupArray(id) AS ids FROM (SELECT id FROM ev ORDER BY id) FORMAT JSON')}`, { token });
    const ok = answers.flatMap((a, i) => (a.status === 200 ? [i + 1] : []));
    expect(stored.body.data[0].ids).toEqual(ok);
  });

  it('a workspace delete answers what happened, not a 408 followed by the delete', async () => {
    expect((await call(`${srv.url}/v0/tenants/local/workspaces`, { method: 'POST', token: srv.operatorToken, body: JSON.stringify({ name: 'w2' }) })).status).toBeLessThan(300);
    const cells = childProcesses(srv.proc.pid!, 'cell-main');
    for (const pid of cells) process.kill(pid, 'SIGSTOP');
    let r;
    try {
      const d = call(`${srv.url}/v0/tenants/local/workspaces/w2`, { method: 'DELETE', token: srv.operatorToken });
      await new Promise((res) => setTimeout(res, 2_500));
      for (const pid of cells) process.kill(pid, 'SIGCONT');
      r = await d;
    } finally {
      for (const pid of cells) process.kill(pid, 'SIGCONT');
    }
    const names = (await call(`${srv.url}/v0/tenants/local/workspaces`, { token: srv.operatorToken })).body.workspaces.map((w: { name: string }) => w.name);
    expect(r.status === 200 ? !names.includes('w2') : names.includes('w2'), `${r.status} ${JSON.stringify(names)}`).toBe(true);
    expect(r.status, r.text).toBe(200);
  });

  it('events with wait=true holding only refused lines answer what happened to their quarantine rows', async () => {
    expect((await call(`${srv.url}/v0/datasources?name=evq&schema=${enc('`id` UInt32 `json:$.id`')}`, { method: 'POST', token })).status).toBe(200);
    const cells = childProcesses(srv.proc.pid!, 'cell-main');
    for (const pid of cells) process.kill(pid, 'SIGSTOP');
    let r;
    try {
      const send = call(`${srv.url}/v0/events?name=evq&wait=true`, { method: 'POST', token, body: '{"id":"QMARK1"}\n' });
      await new Promise((res) => setTimeout(res, 2_500));
      for (const pid of cells) process.kill(pid, 'SIGCONT');
      r = await send;
    } finally {
      for (const pid of cells) process.kill(pid, 'SIGCONT');
    }
    await new Promise((res) => setTimeout(res, 1_000));
    const q = await call(`${srv.url}/v0/sql?q=${enc("SELECT count() AS n FROM evq_quarantine WHERE id = 'QMARK1' FORMAT JSON")}`, { token });
    const stored = q.status === 200 ? Number(q.body.data[0].n) : 0;
    expect([200, 408]).toContain(r.status);
    expect(stored, `${r.status} ${r.text}`).toBe(r.status === 200 ? 1 : 0);
  });
});
