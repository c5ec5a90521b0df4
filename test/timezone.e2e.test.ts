/**
 * The embedded engine works in UTC whatever the host's time zone: a date-time sent without a
 * zone is stored and answered as sent (the CSV validator reads it as UTC), and functions
 * of time answer as Tinybird's (UTC). Real server started with TZ set to New York.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startServer, type RunningServer } from './helpers/server.js';

let srv: RunningServer;
let token: string;

beforeAll(async () => {
  srv = await startServer({ env: { TZ: 'America/New_York' } });
  token = (await call(`${srv.url}/tokens`)).body.workspace_admin_token;
}, 60_000);
afterAll(async () => { await srv?.stop(); });

describe('a server on a host whose time zone is not UTC', () => {
  it('stores and answers date-times as sent, through CSV and NDJSON, and its functions answer in UTC', async () => {
    const schema = encodeURIComponent('`id` UInt8, `ts` DateTime, `ms` DateTime64(3), `d` Date');
    expect((await call(`${srv.url}/v0/datasources?name=tz_csv&schema=${schema}`, { method: 'POST', token })).status).toBeLessThan(300);
    const csv = '1,2024-01-01 00:30:00,2024-07-01 23:59:59.123,2024-01-01\n2,1970-01-01 00:00:00,1970-01-01 00:00:00.000,1970-01-01\n';
    const up = await call(`${srv.url}/v0/datasources?name=tz_csv&mode=append`, { method: 'POST', token, headers: { 'Content-Type': 'text/csv' }, body: csv });
    expect(up.status, up.text).toBe(200);
    const ev = await call(`${srv.url}/v0/events?name=tz_csv&wait=true`, { method: 'POST', token, body: '{"id":3,"ts":"2024-03-10 02:30:00","ms":"2024-11-03 01:30:00.5","d":"2024-03-10"}\n' });
    expect(ev.status, ev.text).toBe(200);
    const r = await call(`${srv.url}/v0/sql?q=${encodeURIComponent('SELECT id, ts, ms, d, toUnixTimestamp(ts) AS epoch FROM tz_csv ORDER BY id FORMAT CSV')}`, { token });
    expect(r.status, r.text).toBe(200);
    expect(r.text).toBe([
      '1,"2024-01-01 00:30:00","2024-07-01 23:59:59.123","2024-01-01",1704069000',
      '2,"1970-01-01 00:00:00","1970-01-01 00:00:00.000","1970-01-01",0',
      // 02:30 on 10 March does not exist in New York (clocks go forward): in UTC it does.
      '3,"2024-03-10 02:30:00","2024-11-03 01:30:00.500","2024-03-10",1710037800',
      '',
    ].join('\n'));
    const f = await call(`${srv.url}/v0/sql?q=${encodeURIComponent("SELECT toDateTime(0) AS a, timezone() AS z FORMAT CSV")}`, { token });
    expect(f.text).toBe('"1970-01-01 00:00:00","UTC"\n');
  });
});
