/**
 * `POST /v0/events?name=<ds>`: NDJSON events (gzip allowed). With `wait=true`
 * the answer (200) comes once the rows are in the engine; otherwise (202) once
 * they are fsynced in the events buffer.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { App } from '../app.js';
import { beginCommit, bodyStream, sendJson } from '../http/context.js';
import { RoostError } from '../errors.js';
import { authenticate, authorize, stillAuthorized, workspaceOf } from '../../auth/authorize.js';
import { runtimeOf } from '../../auth/runtime.js';
import { getTenant, getWorkspace, type Workspace } from '../../tenants/registry.js';
import { checkDefaultsSupported, getDataSource, type DataSource } from '../datasources/registry.js';
import { admitImport, importRows, quarantineNdjsonFile, type ImportSource } from '../ingest/import.js';
import type { QuarantineRow } from '../ingest/quarantine.js';
import type { RejectedRow } from '../native/csv.js';
import { ndjsonShaped, ndjsonSource, REFUSED_DRAIN_BYTES } from '../ingest/ndjson.js';
import { EventBuffer, isContentError, type SegmentOwner } from '../ingest/event-buffer.js';
import { charsetOf, gunzipIfCompressed } from '../ingest/peek.js';
import { chTime } from '../service/time.js';
import { countingBytes } from '../log/metrics.js';
import { publicErrorText } from '../query/public-names.js';
import { admitEvents, checkStorage } from '../../tenants/limits.js';

/** Largest events request body. */
const MAX_EVENTS_BODY = 64 * 1024 * 1024;

/**
 * The dedup token of a buffered flush: made of its segments' names, which a restart never
 * reuses. Past 200 KiB of names (only a batch left by a version that did not cap the segments
 * per flush) it is their SHA-256: the whole list made a token over the engine's query size
 * limit (256 KiB), and that flush failed on every retry. Below it, the token is the one such a
 * version sent, so its batch retried after the upgrade is still recognised.
 */
function flushToken(dsId: string, files: string[]): string {
  const names = files.map((f) => path.basename(f)).join(',');
  return names.length <= 200 * 1024 ? `events:${dsId}:${names}` : `events:${dsId}:sha256:${crypto.createHash('sha256').update(names).digest('hex')}`;
}

/** Segments read whole (see concatSegments), and how many ahead of the one being read. */
const SMALL_SEGMENT = 1 << 20;
const READ_AHEAD = 32;

/**
 * The segments of one flush read as one body, and the line of that body as the line of its own
 * request: a quarantined event's `c__line` counted the lines of the whole flush (segments of
 * many requests), which named no line the client sent. Each segment is one request's body and
 * ends with a line end (EventBuffer.append adds one).
 */
function concatSegments(files: string[]) {
  const starts: number[] = [];  // the body's line number of each segment's first line
  let lines = 0;
  // Segments up to SMALL_SEGMENT are read whole, READ_AHEAD at a time ahead of the reader: one
  // after another, each of a file's open, read and close waited for a turn of an event loop busy
  // with arriving requests (1,000 segments took 4-6 s under 8 clients posting). Larger ones stream.
  const load = async (f: string): Promise<Buffer | undefined> => {
    const fh = await fsp.open(f, 'r');
    try {
      return (await fh.stat()).size <= SMALL_SEGMENT ? await fh.readFile() : undefined;
    } finally {
      await fh.close();
    }
  };
  async function* body(): AsyncGenerator<Buffer> {
    const ahead: Array<Promise<Buffer | undefined>> = [];
    let next = 0;
    for (const f of files) {
      while (ahead.length < READ_AHEAD && next < files.length) {
        const p = load(files[next++]!);
        p.catch(() => {});  // awaited in its turn; left unawaited when the reader stops early
        ahead.push(p);
      }
      starts.push(lines + 1);
      const whole = await ahead.shift()!;
      const chunks = whole ? (whole.length ? [whole] : []) : fs.createReadStream(f, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>;
      for await (const c of chunks) {
        for (let i = c.indexOf(10); i >= 0; i = c.indexOf(10, i + 1)) lines++;
        yield c;
      }
    }
  }
  const requestLine = (line: number): number => {
    let lo = 0, hi = starts.length - 1;
    if (hi < 0 || line < starts[0]!) return line;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (starts[mid]! <= line) lo = mid; else hi = mid - 1;
    }
    return line - starts[lo]! + 1;
  };
  return { body: body(), requestLine };
}

/** `source` with its quarantined rows' lines counted in their own request (see concatSegments). */
function withRequestLines<T extends ImportSource>(source: T, requestLine: (line: number) => number): T {
  const local = (rows: QuarantineRow[]) => { for (const r of rows) r.line = requestLine(r.line); return rows; };
  const { takeEarlyRejects, mapRejected } = source;
  return {
    ...source,
    ...(takeEarlyRejects ? { takeEarlyRejects: () => local(takeEarlyRejects()) } : {}),
    ...(mapRejected ? { mapRejected: async (rejected: RejectedRow[], processed: number) => local(await mapRejected(rejected, processed)) } : {}),
  };
}

export function registerEventRoutes(app: App): EventBuffer {
  /**
   * The workspace and data source of buffered segments. By id where the buffer knows it: a
   * workspace renamed since the segments were written (their directory not moved yet: a flush
   * pass running across the rename, or a kill -9 between the rename and the move) is the same
   * workspace; they were dropped as orphans.
   */
  const ownerOf = (owner: SegmentOwner) => {
    const all = app.state.list<Workspace>('workspaces', owner.tenant);
    let ws = all.find((w) => w.name === owner.workspace);
    if (owner.workspaceId && ws?.id !== owner.workspaceId) ws = all.find((w) => w.id === owner.workspaceId);
    let ds = ws && app.state.get<import('../datasources/registry.js').DataSource>('datasources', owner.tenant, ws.name, owner.datasource);
    // The data source they were written for, by id where the buffer knows it: renamed since (its
    // segments not flushed yet), it is found under its new name; one created since under the old
    // name is another data source.
    if (ws && owner.datasourceId && ds?.id !== owner.datasourceId) {
      ds = app.state.list<import('../datasources/registry.js').DataSource>('datasources', owner.tenant, ws.name).find((d) => d.id === owner.datasourceId);
    }
    return { ws, ds };
  };
  /**
   * One append of events in the data source's operations log (what `row` does not say: none
   * stored, none quarantined, no import), counted in /metrics by its result.
   */
  const logAppend = (ws: Workspace, ds: DataSource, row: Record<string, unknown> & { result: 'ok' | 'error' }): void => {
    app.metrics.ingestOps.inc({ tenant: ws.tenant, event: 'append', result: row.result });
    app.service.write(ws.tenant, 'datasources_ops_log', {
      timestamp: chTime(), workspace: ws.name, workspace_id: ws.id, event_type: 'append', datasource_id: ds.id, datasource_name: ds.name,
      elapsed_time: 0, import_id: '', rows: 0, rows_quarantine: 0, options: { source: 'events' }, ...row,
    });
  };
  const buffer = new EventBuffer({
    root: path.join(app.config.dataDir, 'events'),
    intervalMs: app.config.eventsFlushMs,
    log: app.log,
    quarantine: async (owner, file, err) => {
      // A body the engine refused as a whole (e.g. a DEFAULT expression that throws for one of
      // its events): with wait=true the request would have been answered with that error; its
      // 202 came first, so its events go where the tenant looks for refused rows.
      const { ws, ds } = ownerOf(owner);
      if (!ws || !ds) throw new RoostError('UNKNOWN_DATASOURCE', 'the data source of these buffered events no longer exists');
      const t0 = performance.now();
      const why = publicErrorText(app.state, ws.tenant, ws.name, err);
      // The segment's own import id (the same at a retry after a crash): done once.
      const token = `${flushToken(ds.id, [file])}:refused`;
      const h = crypto.createHash('sha256').update(token).digest('hex');
      const importId = `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
      const { events: n, inserted } = await quarantineNdjsonFile(app, ws, ds, file, `the engine refused this request's events as a whole: ${why}`, importId, token);
      if (!inserted) return n;  // counted and logged when they were quarantined
      app.metrics.quarantinedRows.inc({ tenant: ws.tenant, format: 'ndjson' }, n);
      logAppend(ws, ds, {
        result: 'error', error: `buffered events refused by the engine, quarantined (${n} events in ${ds.name}_quarantine): ${why}`,
        elapsed_time: (performance.now() - t0) / 1000, request_id: 'events-buffer', import_id: importId, rows_quarantine: n, written_rows_quarantine: n,
      });
      return n;
    },
    onRejected: (owner, file, err) => {
      // The tenant sees it in its own operations log (and /metrics), not only the server's log.
      const { ws, ds } = ownerOf(owner);
      if (!ws || !ds) return;
      logAppend(ws, ds, {
        result: 'error', error: `buffered events set aside, not stored: ${publicErrorText(app.state, ws.tenant, ws.name, err)} (kept on the server as ${path.basename(file)})`,
        request_id: 'events-buffer',
      });
    },
    flush: async (owner, files) => {
      const { ws, ds } = ownerOf(owner);
      if (!ws || !ds) {
        app.log.warn('buffered events dropped: their data source no longer exists', { ...owner, files: files.length });
        return;
      }
      const t0 = performance.now();
      const read = { bytes: 0 };
      const segments = concatSegments(files);
      let r;
      try {
        r = await importRows(app, { ws, ds, mode: 'append', source: withRequestLines(ndjsonSource(countingBytes(segments.body, read), ds.columns), segments.requestLine), dialect: { delimiter: ',', quote: '"', escape: '' }, hasHeader: false, requestId: 'events-buffer', staged: false, skipStorageLimit: true, bufferFlush: true,
          dedupToken: flushToken(ds.id, files) });
      } catch (e) {
        // Dropped while this flush waited for it (the drop discards its segments). Renamed
        // meanwhile: kept, and flushed again to it under its new name.
        if ((e as RoostError).code === 'UNKNOWN_DATASOURCE' && !(e as RoostError).details?.renamed_to) {
          app.log.warn('buffered events dropped: their data source no longer exists', { ...owner, files: files.length });
          return;
        }
        // Refused for what the segments hold: the buffer takes each alone, then quarantines (or
        // sets aside) what is refused, each with its own row; this is not a "kept and retried".
        if (isContentError(e)) throw e;
        // Kept and retried; said in the tenant's operations log so that a flush that keeps
        // failing is seen where the tenant looks (and counted in /metrics).
        logAppend(ws, ds, {
          result: 'error', error: `buffered events not stored yet (kept and retried): ${publicErrorText(app.state, ws.tenant, ws.name, e)}`,
          elapsed_time: (performance.now() - t0) / 1000, request_id: 'events-buffer', read_bytes: read.bytes,
        });
        throw e;
      }
      app.metrics.ingestRows.inc({ tenant: ws.tenant, format: 'ndjson' }, r.rows);
      app.metrics.quarantinedRows.inc({ tenant: ws.tenant, format: 'ndjson' }, r.quarantined);
      logAppend(ws, ds, {
        result: 'ok', elapsed_time: (performance.now() - t0) / 1000, request_id: 'events-buffer', import_id: r.importId, rows: r.rows, rows_quarantine: r.quarantined,
        read_bytes: read.bytes, read_rows: r.rows + r.quarantined, written_rows: r.rows, written_rows_quarantine: r.quarantined,
      });
    },
  });
  app.metrics.eventsBuffer = buffer;

  app.router.post('/v0/events', async (ctx) => {
    const cred = await authenticate(app, ctx);
    const { tenant, workspace } = workspaceOf(app, ctx, cred);
    const name = ctx.query.get('name');
    if (!name) throw new RoostError('INVALID_PARAMETER', 'name is required: the data source to append the events to');
    // /v0/events takes NDJSON only: a format= naming another was ignored, each line accepted (202)
    // and then quarantined as "invalid JSON" at the flush.
    const format = ctx.query.get('format');
    if (format !== null && !/^(ndjson|json|jsonl)$/i.test(format)) {
      throw new RoostError('UNSUPPORTED_FORMAT', `/v0/events takes NDJSON (one JSON object a line), not format=${format}; send CSV to POST /v0/datasources?name=${encodeURIComponent(name)}&mode=append`);
    }
    const ws = getWorkspace(app.state, tenant, workspace);
    // The scope before the lookup: without it the answer is the same 403 whether or not the
    // data source exists (as on pipe and data source routes); with it, a missing one is a 404.
    authorize(app, ctx, cred, { op: 'workspace', tenant, workspace, scope: 'DATASOURCES:APPEND', resource: name });
    let ds;
    try {
      ds = getDataSource(app.state, tenant, workspace, name);
    } catch (e) {
      // Tinybird Classic creates a missing data source from the first events; Roost does not
      // (docs/decisions.md): the answer says how to create it.
      if ((e as RoostError).code !== 'UNKNOWN_DATASOURCE') throw e;
      // A quarantine table is no data source to send to (and no name one can be created under).
      const base = /^(.+)_quarantine$/.exec(name)?.[1];
      if (base && app.state.get('datasources', tenant, workspace, base)) {
        throw new RoostError('INVALID_PARAMETER', `"${name}" is the quarantine of data source "${base}": Roost alone writes the rows its appends reject there; send events to "${base}"`);
      }
      if (name === '_') throw new RoostError('UNKNOWN_DATASOURCE', '"_" is a reserved name (an endpoint\'s result in q=), no data source: send events to a data source of this workspace');
      // A service data source (tinybird.*) is Roost's own log: no name one can create.
      if (name.includes('.')) throw new RoostError('UNKNOWN_DATASOURCE', `"${name}" is no data source events can be sent to${name.startsWith('tinybird.') ? ' (the tinybird.* data sources are logs Roost writes)' : ''}; send events to a data source of this workspace`);
      throw new RoostError('UNKNOWN_DATASOURCE', `there is no data source "${name}" in this workspace; /v0/events appends to an existing one: create it first with POST /v0/datasources?name=${encodeURIComponent(name)}&format=ndjson (a schema= with json paths, or a sample NDJSON body to infer it from)`);
    }
    const tenantRec = getTenant(app.state, tenant);
    let rate: ReturnType<typeof admitEvents>;
    try {
      // Refused before a 202: events of a data source the tenant's server cannot store are not taken.
      await checkDefaultsSupported(app.cells.engineFor(tenantRec), ds.columns, { unknownPasses: true });
      rate = admitEvents(tenantRec);
      await checkStorage(app, tenantRec);
    } catch (e) {
      // Refused for the tenant's limits (events_per_second, storage) or its server: an append that
      // failed, in the operations log as /v0/datasources appends refused for them are (the rate's
      // 429 was in no service table at all). Rate refusals at most once a second per data source:
      // a client hammering past the limit would fill the service log's pending rows with them.
      if (!(e instanceof RoostError && e.code === 'RATE_LIMITED') || !runtimeOf(app).limiter.take(`events-refusal-record:${tenant}:${ds.id}`, 1, 1).retryAfter) {
        logAppend(ws, ds, { result: 'error', error: publicErrorText(app.state, tenant, workspace, e), request_id: ctx.id });
      }
      throw e;
    }
    const limit = Math.min(MAX_EVENTS_BODY, app.config.maxUploadBytes);
    // Anything but a clear yes or no is refused: `wait=maybe` was taken as no (202, buffered).
    const waitText = (ctx.query.get('wait') ?? '').trim();
    if (!/^(|1|true|0|false)$/i.test(waitText)) {
      const e = new RoostError('INVALID_PARAMETER', `wait must be true or false; got "${waitText.slice(0, 40)}" (nothing was stored)`);
      logAppend(ws, ds, { result: 'error', error: e.message, request_id: ctx.id });
      throw e;
    }
    const wait = /^(1|true)$/i.test(waitText);
    // A form upload (curl -F) is not NDJSON: its boundary and part headers were quarantined as
    // invalid JSON lines, after a 202.
    if (/^multipart\//i.test(ctx.req.headers['content-type'] ?? '')) {
      const e = new RoostError('UNSUPPORTED_FORMAT', 'send the NDJSON lines as the body itself (curl --data-binary @events.ndjson), not as a multipart/form-data upload; nothing was stored');
      logAppend(ws, ds, { result: 'error', error: e.message, request_id: ctx.id });
      // A small form is read before the 400, as a refused NDJSON body is (ndjsonShaped).
      let read = 0;
      try { for await (const chunk of bodyStream(ctx, limit)) if ((read += chunk.length) > REFUSED_DRAIN_BYTES) break; } catch { /* answered below */ }
      throw e;
    }
    // Asked again at the commit point (the insert, or the segment accepted into the buffer): a
    // credential revoked, or that lost DATASOURCES:APPEND on it, while the body arrived stores nothing.
    // A text encoding the request declares other than UTF-8 (`charset=iso-8859-1`) is decoded into
    // UTF-8, as /v0/datasources decodes it; such a body was refused as invalid UTF-8.
    const charset = charsetOf(ctx.req.headers['content-type']);
    const stillMay = () => stillAuthorized(app, ctx, cred, { tenant, workspaceId: ws.id, workspace, scope: 'DATASOURCES:APPEND', resource: ds.name, datasourceId: ds.id });
    if (wait) {
      const t0 = performance.now();
      const read = { bytes: 0 };
      let r;
      try {
        r = await importRows(app, {
          ws, ds, mode: 'append', source: ndjsonSource(countingBytes(ndjsonShaped(await gunzipIfCompressed(bodyStream(ctx, limit), limit, undefined, charset)), read), ds.columns), dialect: { delimiter: ',', quote: '"', escape: '' },
          hasHeader: false, requestId: ctx.id, signal: ctx.signal, staged: false, group: true, beforeCommit: () => { stillMay(); beginCommit(ctx); },
        });
      } catch (e) {
        // A refused append is an operation too (as for /v0/datasources): the log says why.
        logAppend(ws, ds, { result: 'error', error: publicErrorText(app.state, tenant, workspace, e), elapsed_time: (performance.now() - t0) / 1000, request_id: ctx.id, read_bytes: read.bytes });
        throw e;
      }
      app.metrics.ingestRows.inc({ tenant, format: 'ndjson' }, r.rows);
      app.metrics.ingestBytes.inc({ tenant, format: 'ndjson' }, read.bytes);
      app.metrics.quarantinedRows.inc({ tenant, format: 'ndjson' }, r.quarantined);
      logAppend(ws, ds, {
        result: 'ok', elapsed_time: (performance.now() - t0) / 1000, request_id: ctx.id, import_id: r.importId, rows: r.rows, rows_quarantine: r.quarantined,
        read_bytes: read.bytes, read_rows: r.rows + r.quarantined, written_rows: r.rows, written_rows_quarantine: r.quarantined,
      });
      return sendJson(ctx, 200, { successful_rows: r.rows, quarantined_rows: r.quarantined }, rate.charge(r.rows + r.quarantined));
    }
    const t0 = performance.now();
    let r;
    try {
      const body = ndjsonShaped(await gunzipIfCompressed(bodyStream(ctx, limit), limit, undefined, charset));
      // Segments are kept under the workspace's name as it is now: a rename since this request
      // began has moved (or will move) the buffer to the new name. Nothing awaits in between.
      const current = app.state.list<Workspace>('workspaces', tenant).find((w) => w.id === ws.id);
      if (!current) throw new RoostError('UNKNOWN_WORKSPACE', `tenant "${tenant}" has no workspace "${workspace}"`);
      // The data source (or its workspace) may be dropped, and created again under the same
      // name, while the body arrives: the drop discarded the segments it found, and a segment
      // written after it would be flushed into the new data source, or dropped at flush time
      // after its 202. Checked once the body is on disk, before the segment can be flushed.
      const gone = () => {
        const w = app.state.list<Workspace>('workspaces', tenant).find((x) => x.id === ws.id);
        if (!w) return new RoostError('UNKNOWN_WORKSPACE', `workspace "${workspace}" was deleted while the events arrived (nothing was stored)`);
        const now = app.state.get<{ id: string }>('datasources', tenant, w.name, ds.name);
        if (now?.id !== ds.id) {
          const renamed = app.state.list<{ id: string; name: string }>('datasources', tenant, w.name).find((d) => d.id === ds.id);
          if (renamed) return new RoostError('UNKNOWN_DATASOURCE', `data source "${ds.name}" was renamed to "${renamed.name}" while the events arrived (nothing was stored); send them to "${renamed.name}"`, { details: { renamed_to: renamed.name } });
          return new RoostError('UNKNOWN_DATASOURCE', `data source "${ds.name}" was dropped while the events arrived (nothing was stored)`);
        }
        if (w.name !== current.name) return new RoostError('CONFLICT', `workspace "${current.name}" was renamed to "${w.name}" while the events arrived (nothing was stored); send them again`, { retryable: true, headers: { 'Retry-After': '1' } });
        return undefined;
      };
      try {
        // Like an import: refused while a restore switches the tenant's databases, and waited for
        // by it (a segment written across the switch was flushed into the restored data).
        r = await admitImport(tenant, () => buffer.append({ tenant, workspace: current.name, datasource: ds.name, workspaceId: ws.id, datasourceId: ds.id }, body, {
          // The 202 is the commit point: a segment accepted here is flushed whatever happens to
          // the credential after it (an acknowledged event is never lost).
          accept: () => { const e = gone(); if (e && e.code !== 'CONFLICT') throw e; stillMay(); },
        }));
      } catch (e) {
        // The segment's directory went with a drop, delete or rename during the request.
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw gone() ?? e;
        throw e;
      }
      app.metrics.ingestBytes.inc({ tenant, format: 'ndjson' }, r.bytes);
      if (r.lines === 0) throw new RoostError('EMPTY_BODY', r.bytes === 0 ? 'the body is empty: send one JSON object per line' : 'the body holds only blank lines: send one JSON object per line');
    } catch (e) {
      // Refused before it was buffered (a corrupt gzip body, invalid UTF-8, a line over the limit,
      // no events): an operation that failed, logged as with wait=true. (Buffered rows are
      // logged when they are flushed.)
      logAppend(ws, ds, { result: 'error', error: publicErrorText(app.state, tenant, workspace, e), elapsed_time: (performance.now() - t0) / 1000, request_id: ctx.id });
      throw e;
    }
    // Rows are validated when the buffer is flushed; rejected ones go to the quarantine. A line
    // that is plainly no JSON object (not `{` … `}`) is counted as quarantined already: it was
    // among the successful rows, so a client (the tb CLI) said all was appended.
    sendJson(ctx, 202, { successful_rows: r.lines - r.notObjects, quarantined_rows: r.notObjects }, rate.charge(r.lines));
  });
  return buffer;
}
