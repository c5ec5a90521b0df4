/**
 * `GET /v0/tenants/<slug>/audit`: a tenant's audit records for its tenant admins (and the
 * operator). A workspace's admins read their workspace's records with SQL (`roost.audit_log`);
 * records of the tenant as a whole — logins and logouts, CSRF and login failures, mapping rule
 * and connection changes, denials outside any workspace — carry no workspace, and this route is
 * where they are read. It reads the tenant's own service table, newest first.
 */
import type { App } from '../app.js';
import { sendJson } from '../http/context.js';
import { RoostError } from '../errors.js';
import { authenticate, authorize } from '../../auth/authorize.js';
import { getTenant, getWorkspace } from '../../tenants/registry.js';
import { quoteString, versionAtLeast } from '../cells/engine.js';
import { serviceDb } from '../service/service-log.js';
import { chTime } from '../service/time.js';

/** The engine's `YYYY-MM-DD hh:mm:ss[.sss]` (UTC) as ISO 8601. */
function isoOf(t: string): string {
  return `${String(t).replace(' ', 'T').slice(0, 23)}Z`;
}

const OUTCOMES = new Set(['success', 'failure', 'denied']);
export const AUDIT_PAGE_DEFAULT = 100;
/** Records of ~250 bytes: a page stays well under the engine's 2 MiB cap on a buffered result. */
export const AUDIT_PAGE_MAX = 1_000;

/** An ISO 8601 date-time with a zone (`Z` or an offset), as milliseconds; else a 400 naming the parameter. */
function instant(name: string, value: string): number {
  const ms = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2}))?$/.test(value) ? Date.parse(value.length === 10 ? `${value}T00:00:00Z` : value.replace(' ', 'T')) : NaN;
  // A day the month does not have (2026-02-30) is refused, not rolled over into the next month.
  const [y, mo, d] = value.slice(0, 10).split('-').map(Number) as [number, number, number];
  const day = new Date(Date.UTC(y, mo - 1, d));
  const real = day.getUTCFullYear() === y && day.getUTCMonth() === mo - 1 && day.getUTCDate() === d;
  if (!Number.isFinite(ms) || !real) throw new RoostError('INVALID_PARAMETER', `${name} must be an ISO 8601 date (2026-11-30) or date-time with a zone (2026-11-30T08:00:00Z, 2026-11-30T09:00:00+01:00); got ${JSON.stringify(value.slice(0, 64))}`);
  return ms;
}

export function registerTenantAuditRoutes(app: App): void {
  app.router.get('/v0/tenants/:slug/audit', async (ctx) => {
    const cred = await authenticate(app, ctx);
    authorize(app, ctx, cred, { op: 'tenant', tenant: ctx.params.slug! });
    const tenant = getTenant(app.state, ctx.params.slug!);
    const q = ctx.query;
    const known = new Set(['since', 'until', 'event', 'outcome', 'workspace', 'limit', 'cursor', 'token']);
    for (const k of q.keys()) if (!known.has(k)) throw new RoostError('INVALID_PARAMETER', `unknown parameter "${k}"; known: since, until, event, outcome, workspace, limit, cursor`);
    // The next page's start, as the previous answer's next_cursor said: `<time>~<n>`, the records
    // at or before that time, past the first n of that very time (already answered).
    const cursorRaw = q.get('cursor');
    const cursor = cursorRaw === null ? undefined : /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,3})?Z)~(\d{1,9})$/.exec(cursorRaw);
    if (cursorRaw !== null && !cursor) throw new RoostError('INVALID_PARAMETER', 'cursor must be a next_cursor this route answered (<time>~<count>)');
    const cursorMs = cursor ? Date.parse(cursor[1]!) : undefined;
    const skip = cursor ? Number(cursor[2]) : 0;
    const where = [`tenant = ${quoteString(tenant.slug)}`];
    const since = q.get('since');
    const until = q.get('until');
    const sinceMs = since !== null ? instant('since', since) : undefined;
    const untilMs = until !== null ? instant('until', until) : undefined;
    if (sinceMs !== undefined && untilMs !== undefined && sinceMs >= untilMs) throw new RoostError('INVALID_PARAMETER', 'since must be before until');
    const engine = app.cells.engineFor(tenant);
    // The stored text form (`YYYY-MM-DD hh:mm:ss.sss`, UTC) compares as the column's type. Servers
    // before 20.1 keep whole seconds (DateTime) and parse no fraction: since rounds down, until up.
    const ms = versionAtLeast(await engine.version(), 20, 1);
    const at = (t: number, up: boolean) => quoteString(ms ? chTime(t) : chTime((up ? Math.ceil(t / 1000) : Math.floor(t / 1000)) * 1000).slice(0, 19));
    if (sinceMs !== undefined) where.push(`timestamp >= ${at(sinceMs, false)}`);
    if (untilMs !== undefined) where.push(`timestamp < ${at(untilMs, true)}`);
    if (cursorMs !== undefined) where.push(`timestamp <= ${at(cursorMs, false)}`);
    const events = q.getAll('event').flatMap((e) => e.split(',')).map((e) => e.trim()).filter(Boolean);
    for (const e of events) if (!/^[a-z_]+(?:\.[a-z_]+)*$/.test(e)) throw new RoostError('INVALID_PARAMETER', `event ${JSON.stringify(e.slice(0, 64))} is not an event name (like login.success, authz.denied)`);
    if (events.length) where.push(`event IN (${events.map(quoteString).join(', ')})`);
    const outcomes = q.getAll('outcome').flatMap((e) => e.split(',')).map((e) => e.trim()).filter(Boolean);
    for (const o of outcomes) if (!OUTCOMES.has(o)) throw new RoostError('INVALID_PARAMETER', `outcome must be success, failure or denied; got ${JSON.stringify(o.slice(0, 64))}`);
    if (outcomes.length) where.push(`outcome IN (${outcomes.map(quoteString).join(', ')})`);
    const ws = q.get('workspace');
    // `workspace=-`: the tenant's own records (no workspace); a name: that workspace's, by id.
    if (ws === '-') where.push(`workspace_id = ''`);
    else if (ws !== null) where.push(`workspace_id = ${quoteString(getWorkspace(app.state, tenant.slug, ws).id)}`);
    const limitRaw = q.get('limit') ?? String(AUDIT_PAGE_DEFAULT);
    const limit = /^\d{1,6}$/.test(limitRaw) ? Number(limitRaw) : NaN;
    if (!(limit >= 1 && limit <= AUDIT_PAGE_MAX)) throw new RoostError('INVALID_PARAMETER', `limit must be a whole number from 1 to ${AUDIT_PAGE_MAX}; got ${JSON.stringify(limitRaw.slice(0, 32))}`);

    // Records queued in this server and not yet written are read too.
    await app.service.flushTenant(tenant.slug);
    await app.service.ensure(tenant.slug);
    // Newest first; records of one time in a fixed order of their contents, so a page may end
    // inside a time and the next go on from there (on servers keeping whole seconds, a busy
    // second holds many records).
    const sql = `SELECT timestamp, workspace, workspace_id, event, outcome, reason, actor, credential, connection, resource, request_id, ip, details FROM ${serviceDb(tenant.slug)}.audit_log WHERE ${where.join(' AND ')} ORDER BY timestamp DESC, cityHash64(request_id, event, outcome, reason, actor, credential, connection, resource, ip, details, workspace_id) DESC LIMIT ${limit + 1}${skip ? ` OFFSET ${skip}` : ''}`;
    const text = (await engine.exec(sql, { format: 'JSONEachRow', signal: ctx.signal })).toString('utf8');
    const rows = text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, string>);
    const page = rows.slice(0, limit);
    let nextCursor: string | undefined;
    if (rows.length > limit) {
      const last = isoOf(page[page.length - 1]!.timestamp!);
      const atLast = page.filter((r) => isoOf(r.timestamp!) === last).length;
      nextCursor = `${last}~${cursor && cursor[1] === last ? skip + atLast : atLast}`;
    }
    const records = page.map((r) => {
      let details: unknown;
      if (r.details) { try { details = JSON.parse(r.details); } catch { details = r.details; } }
      return {
        timestamp: isoOf(r.timestamp!),
        event: r.event, outcome: r.outcome,
        workspace: r.workspace || null, workspace_id: r.workspace_id || null,
        actor: r.actor || null, credential: r.credential || null, connection: r.connection || null,
        resource: r.resource || null, reason: r.reason || null, ip: r.ip || null, request_id: r.request_id || null,
        ...(details !== undefined ? { details } : {}),
      };
    });
    const body: Record<string, unknown> = { tenant: tenant.slug, records, rows: records.length };
    if (nextCursor) body.next_cursor = nextCursor;
    sendJson(ctx, 200, body);
  });
}
