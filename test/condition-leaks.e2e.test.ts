// delete_condition and replace_condition run over a data source's rows. For credentials that may
// change it (DATASOURCES:DROP, DATASOURCES:APPEND) but not read it, they were read access: engine
// errors quote values ("Cannot parse string 'secretkey'"), a dry run counts matching rows, and
// whether a condition fails or not (throwIf(k > 'm') = 1) is one bit of any value, with nothing
// changed (a black-box test spelled out a secret that way with APPEND alone). A condition needs
// DATASOURCES:READ on the data source; a reader gets the engine's own message and counts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startServer, type RunningServer, workspaceApi } from './helpers/server.js';

let srv: RunningServer;
let admin: string;
const { rows, post, createToken } = workspaceApi(() => srv, () => admin);
const enc = encodeURIComponent;
const SECRET = 'secretkey42';

beforeAll(async () => {
  srv = await startServer();
  admin = (await call(`${srv.url}/tokens`)).body.workspace_admin_token;
  const made = await post(`/v0/datasources?name=vault&schema=${enc('id UInt32, k String')}`, `id,k\n1,${SECRET}\n`);
  expect(made.status, made.text).toBe(200);
});
afterAll(async () => { await srv?.stop(); });

/** The ops log's error texts for `event` (rows arrive with the service log's next flush). */
async function opsErrors(event: string): Promise<string[]> {
  for (let i = 0; i < 100; i++) {
    const r = await rows(`SELECT error FROM tinybird.datasources_ops_log WHERE datasource_name = 'vault' AND event_type = '${event}' AND error != ''`);
    if (r.length) return r.map((x) => String(x.error));
    await new Promise((res) => setTimeout(res, 200));
  }
  throw new Error(`no ${event} error in the operations log after 20 s`);
}

const del = (token: string, form: Record<string, string>) =>
  call(`${srv.url}/v0/datasources/vault/delete`, { method: 'POST', token, body: new URLSearchParams(form) });

describe('DATASOURCES:DROP without READ', () => {
  it('a delete_condition is refused (403) before it runs: no engine error, no failing or not, nothing deleted', async () => {
    const dropper = await createToken('dropper', ['DATASOURCES:DROP:vault']);
    // One condition true of the secret, one false, one the engine refuses: the same answer.
    const answers = [];
    for (const cond of [`throwIf(k = '${SECRET}') = 1`, "throwIf(k = 'other') = 1", 'toUInt8(k) = 1', 'id = 1']) {
      const r = await del(dropper, { delete_condition: cond });
      expect(r.status, r.text).toBe(403);
      expect(r.text).not.toContain(SECRET);
      expect(r.body.error).toContain('DATASOURCES:READ');
      answers.push(r.text.replace(/"request_id":"[^"]*"/, ''));
    }
    expect(new Set(answers.map((a) => JSON.parse(a).code)).size).toBe(1);
    // Nor does the operations log quote anything.
    const log = await opsErrors('delete_data');
    expect(log.join('\n')).not.toContain(SECRET);
    expect(await rows('SELECT k FROM vault')).toEqual([{ k: SECRET }]);
  });

  it('a dry run, which counts matching rows, needs DATASOURCES:READ too (403)', async () => {
    const dropper = await createToken('dropper2', ['DATASOURCES:DROP:vault']);
    const r = await del(dropper, { delete_condition: "startsWith(k, 'secr')", dry_run: 'true' });
    expect(r.status, r.text).toBe(403);
    expect(r.text).not.toMatch(/rows_to_be_deleted/);
    // With READ too, the dry run answers its count, and a condition the engine refuses its message.
    const both = await createToken('dropper_reader', ['DATASOURCES:DROP:vault', 'DATASOURCES:READ:vault']);
    const ok = await del(both, { delete_condition: "startsWith(k, 'secr')", dry_run: 'true' });
    expect(ok.status, ok.text).toBe(200);
    expect(ok.body.rows_to_be_deleted).toBe(1);
  });

  it('a token that may read the data source still gets the engine\'s own message', async () => {
    const r = await del(admin, { delete_condition: 'toUInt8(k) = 1' });
    expect(r.status).toBeGreaterThanOrEqual(400);
    expect(r.text).toContain(SECRET);
  });
});

describe('DATASOURCES:APPEND without READ', () => {
  it('a replace_condition is refused (403): nothing replaced, nothing told', async () => {
    const appender = await createToken('appender', ['DATASOURCES:APPEND:vault']);
    for (const cond of [`throwIf(k = '${SECRET}') = 1`, "throwIf(k = 'other') = 1", 'toUInt8(k) = 1']) {
      const r = await call(`${srv.url}/v0/datasources?name=vault&mode=replace&replace_condition=${enc(cond)}`, {
        method: 'POST', token: appender, body: 'id,k\n2,x\n', headers: { 'Content-Type': 'text/csv' },
      });
      expect(r.status, r.text).toBe(403);
      expect(r.text).not.toContain(SECRET);
      expect(r.body.error).toContain('DATASOURCES:READ');
    }
    expect(await rows('SELECT k FROM vault')).toEqual([{ k: SECRET }]);
    // Appending, which reads nothing, goes on.
    const a = await call(`${srv.url}/v0/datasources?name=vault&mode=append`, { method: 'POST', token: appender, body: 'id,k\n3,y\n', headers: { 'Content-Type': 'text/csv' } });
    expect(a.status, a.text).toBe(200);
  });
});

describe('a condition may read no file of the server', () => {
  // A WITH RECURSIVE element's own name was left bare in its body; ClickHouse reads a bare name
  // there as a table of the session's current database, which in chdb reads files by path, and
  // a partial replace runs its condition inside INSERT ... SELECT (no readonly): the operator
  // token came back in a "Cannot parse string" error.
  it('WITH RECURSIVE in replace_condition, delete_condition and /v0/sql: refused, the file never quoted, nothing changed', async () => {
    const file = `${srv.dataDir}/operator-token`;
    const token = srv.operatorToken;
    const q = (f: string) => `(WITH RECURSIVE \`${f}\` AS (SELECT * FROM \`${f}\`) SELECT toString(toUInt8(assumeNotNull(any(c1)))) FROM \`${f}\`)`;
    const before = await rows('SELECT id, k FROM vault ORDER BY id');
    const nested = (f: string) => `(WITH RECURSIVE r AS (WITH \`${f}\` AS (SELECT * FROM \`${f}\`) SELECT * FROM \`${f}\`) SELECT toString(toUInt8(assumeNotNull(any(c1)))) FROM r)`;
    for (const cond of [`k = ${q(file)}`, `k = ${nested(file)}`]) {
      const rep = await call(`${srv.url}/v0/datasources?name=vault&mode=replace&format=ndjson&replace_condition=${enc(cond)}`, { method: 'POST', token: admin, body: '{"id":2,"k":"x"}\n' });
      expect(rep.status, rep.text).toBeGreaterThanOrEqual(400);
      expect(rep.status, rep.text).toBeLessThan(500);
      expect(rep.text).not.toContain(token);
      const d = await del(admin, { delete_condition: cond, dry_run: 'true' });
      expect(d.status, d.text).toBeGreaterThanOrEqual(400);
      expect(d.text).not.toContain(token);
      const s = await call(`${srv.url}/v0/sql?q=${enc(`SELECT ${cond.slice(4)} AS x FORMAT JSON`)}`, { token: admin });
      expect(s.status, s.text).toBeGreaterThanOrEqual(400);
      expect(s.text).not.toContain(token);
    }
    expect(await rows('SELECT id, k FROM vault ORDER BY id')).toEqual(before);
  });
});

describe('arrayJoin in a condition', () => {
  it('is refused (400) in replace_condition and delete_condition, quoted or not; nothing changes', async () => {
    const made = await post(`/v0/datasources?name=aj&schema=${enc('id UInt32')}`, '1\n2\n3\n');
    expect(made.status, made.text).toBe(200);
    for (const cond of ['arrayJoin([id, id + 10]) > 5', '`arrayJoin` ([id]) = 1', 'id IN (1) AND arrayJoin /* c */ ([id]) > 0']) {
      const rep = await call(`${srv.url}/v0/datasources?name=aj&mode=replace&replace_condition=${enc(cond)}`, { method: 'POST', token: admin, body: '9\n' });
      expect(rep.status, `${cond}: ${rep.text}`).toBe(400);
      expect(rep.body.error).toMatch(/replace_condition may not call arrayJoin/);
      const d = await call(`${srv.url}/v0/datasources/aj/delete`, { method: 'POST', token: admin, body: new URLSearchParams({ delete_condition: cond, dry_run: 'true' }) });
      expect(d.status, `${cond}: ${d.text}`).toBe(400);
      expect(d.body.error).toMatch(/delete_condition may not call arrayJoin/);
    }
    expect((await rows('SELECT id FROM aj ORDER BY id')).map((r) => r.id)).toEqual([1, 2, 3]);
    // The word in a string, or a column of that name, is no call.
    const ok = await call(`${srv.url}/v0/datasources/aj/delete`, { method: 'POST', token: admin, body: new URLSearchParams({ delete_condition: "toString(id) = 'arrayJoin(x)'", dry_run: 'true' }) });
    expect(ok.status, ok.text).toBe(200);
    const rep = await call(`${srv.url}/v0/datasources?name=aj&mode=replace&replace_condition=${enc('has([2, 9], id)')}`, { method: 'POST', token: admin, body: '9\n' });
    expect(rep.status, rep.text).toBe(200);
    expect((await rows('SELECT id FROM aj ORDER BY id')).map((r) => r.id)).toEqual([1, 3, 9]);
  });
});

describe('DATASOURCES:READ through a row filter', () => {
  it('is not enough for a condition (403, audited): a dry run counted rows the filter hides, and a replace or delete would act on them', async () => {
    const made = await post(`/v0/datasources?name=split&schema=${enc('id UInt32, k String')}`, `id,k\n1,open\n2,${SECRET}\n`);
    expect(made.status, made.text).toBe(200);
    const filtered = await createToken('filtered_dropper', ['DATASOURCES:DROP:split', 'DATASOURCES:READ:split:id = 1', 'DATASOURCES:APPEND:split']);
    // What the filter hides, read through /v0/sql: nothing of row 2.
    const seen = await call(`${srv.url}/v0/sql?q=${enc('SELECT k FROM split FORMAT JSON')}`, { token: filtered });
    expect(seen.body.data).toEqual([{ k: 'open' }]);
    for (const dry of ['true', 'false']) {
      const r = await call(`${srv.url}/v0/datasources/split/delete`, { method: 'POST', token: filtered, body: new URLSearchParams({ delete_condition: `k = '${SECRET}'`, dry_run: dry }) });
      expect(r.status, r.text).toBe(403);
      expect(r.body.error).toMatch(/reads "split" through a row filter, and delete_condition is evaluated over every row of it/);
      expect(r.text).not.toMatch(/rows_to_be_deleted|rows_affected/);
    }
    const rep = await call(`${srv.url}/v0/datasources?name=split&mode=replace&replace_condition=${enc(`k = '${SECRET}'`)}`, { method: 'POST', token: filtered, body: `3,x\n` });
    expect(rep.status, rep.text).toBe(403);
    expect(await rows('SELECT id, k FROM split ORDER BY id')).toEqual([{ id: 1, k: 'open' }, { id: 2, k: SECRET }]);
    // Each refusal is in the audit log.
    let denials: any[] = [];
    for (let i = 0; i < 50 && denials.length < 3; i++) {
      denials = await rows("SELECT reason, credential FROM roost.audit_log WHERE event = 'authz.denied' AND reason LIKE '%through a row filter%'");
      await new Promise((res) => setTimeout(res, 200));
    }
    expect(denials.length).toBe(3);
    for (const d of denials) expect(d.credential).toContain('filtered_dropper');
  });
});
