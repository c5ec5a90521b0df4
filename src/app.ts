/**
 * The server process: wires config, state, cells, auth and routes together,
 * and runs the start and graceful-stop sequences.
 */
import fs from 'node:fs';
import path from 'node:path';
import { StartRefused } from './errors.js';
import type { Config } from './config.js';
import { createLogger, type Logger } from './log/logger.js';
import { createMetrics, type Metrics } from './log/metrics.js';
import { DropLater } from '../tenants/drop-later.js';
import { State } from './state/state.js';
import type { Engine } from './cells/engine.js';
import { readReattach, writeReattach, type Reattach } from './cells/metadata-repair.js';
import { listDataSources, reattachTable } from './datasources/registry.js';
import { JournalStore } from './state/journal-store.js';
import { Router } from './http/router.js';
import { HttpServer, loopbackHost, openFilesLimit } from './http/server.js';
import { CellManager } from '../tenants/placement.js';
import { SecretBox } from '../auth/secrets.js';
import { loadOperatorToken, type OperatorToken } from '../auth/operator.js';
import { registerHealthRoutes } from './api/health.js';
import { registerDevRoutes, seedDevelopment } from './api/dev.js';
import { registerTenantAuditRoutes } from './api/tenant-audit.js';
import { CELL_DELETING, CELL_TRASH, registerTenantRoutes } from './api/tenants.js';
import { authListening, registerAuthRoutes } from '../auth/routes.js';
import { auditRefusal, deletedMeanwhile, type Credential } from '../auth/authorize.js';
import { registerSqlRoutes } from './api/sql.js';
import { registerDataSourceRoutes, resumeTableDrops } from './api/datasources.js';
import { registerEventRoutes } from './api/events.js';
import { registerPipeRoutes } from './api/pipes.js';
import { registerJobRoutes } from './api/jobs.js';
import type { EventBuffer } from './ingest/event-buffer.js';
import { ServiceLog } from './service/service-log.js';
import { native } from './native/addon.js';
import { createAuditor, type Auditor } from './service/audit.js';
import { getTenant, type Tenant, type Workspace } from '../tenants/registry.js';
import { plainHttpHost } from '../auth/loopback.js';
import { sweepQuarantineSpools } from './ingest/quarantine.js';

export interface App {
  config: Config;
  log: Logger;
  metrics: Metrics;
  state: State;
  cells: CellManager;
  secrets: SecretBox;
  operator: OperatorToken;
  router: Router;
  http: HttpServer;
  /** Buffered writer of the tenants' service data sources. */
  service: ServiceLog;
  /** Records an audit event (tenant's roost.audit_log + JSON log). */
  audit: Auditor;
  /** The durable buffer behind /v0/events. */
  events?: EventBuffer;
  /** Drops of tables the tenant's engine could not take when asked, tried again (tenants/drop-later.ts). */
  dropLater: DropLater;
  /** Pipes that read a data source (set by the pipes module). */
  /** Pipes reading a data source (in `s`, a transaction's view, when given). */
  dependents?: (ws: import('../tenants/registry.js').Workspace, datasource: string, s?: State) => string[];
  /** Resolves with the bound address once listening. */
  address: { host: string; port: number };
  stop(reason?: string): Promise<void>;
}

/** Another live process (a Roost server) holds the data directory's lock. */
export class DataDirInUse extends StartRefused {}

/**
 * Takes the data directory's lock (`<data>/roost.lock`, an exclusive flock the kernel drops
 * when the process ends, kill -9 included): two servers on one directory would share its
 * state journal, spools and engines, and the second would flush the first's buffered events
 * again or sweep the spools of its running imports. Returns the release.
 */
function lockDataDir(dataDir: string): () => void {
  const file = path.join(dataDir, 'roost.lock');
  const r = native().lockFile(file, `pid ${process.pid}\nstarted ${new Date().toISOString()}\n`) as { ok: boolean; fd?: number; holder?: string };
  if (!r.ok) {
    const pid = /^pid (\d+)/m.exec(r.holder ?? '')?.[1];
    throw new DataDirInUse(`the data directory ${dataDir} is in use by another Roost server${pid ? ` (pid ${pid})` : ''}; stop it first, or give this one another --data directory`);
  }
  // The directory itself too: `roost.lock` removed while this server runs, a second server made
  // a new one, locked it and ran on the same directory (its acknowledged changes then lost).
  const d = native().lockDir(dataDir) as { ok: boolean; fd?: number };
  if (!d.ok) {
    native().unlockFile(r.fd);
    throw new DataDirInUse(`the data directory ${dataDir} is in use by another Roost server (its roost.lock was removed; the directory itself is held); stop it first, or give this one another --data directory`);
  }
  let held = true;
  return () => {
    if (held) { native().unlockFile(r.fd); native().unlockFile(d.fd); }
    held = false;
  };
}

export async function startApp(config: Config, opts: { log?: Logger } = {}): Promise<App> {
  const log = opts.log ?? createLogger(config.logLevel);
  fs.mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const unlock = lockDataDir(config.dataDir);
  try {
    return await startLocked(config, log, unlock);
  } catch (e) {
    unlock();
    throw e;
  }
}

async function startLocked(config: Config, log: Logger, unlock: () => void): Promise<App> {
  fs.mkdirSync(path.join(config.dataDir, 'cells'), { recursive: true, mode: 0o700 });
  const metrics = createMetrics();
  const { box: secrets } = SecretBox.open(config.dataDir, config.secretKey);
  const operator = loadOperatorToken(config.dataDir, config.operatorToken);

  const state = new State(new JournalStore(path.join(config.dataDir, 'state')), () => metrics.stateWrites.inc());
  const recovered = await state.open();
  for (const note of recovered) log.warn('state recovered', { note });
  // Quarantine spools of imports a crash ended: their imports answered nothing (or an error).
  const swept = sweepQuarantineSpools(path.join(config.dataDir, 'tmp'));
  if (swept) log.warn('removed quarantine spool files left by a crash', { files: swept });

  const cells = new CellManager({
    dataDir: config.dataDir, idleMs: config.cellIdleMs, healthMs: config.cellHealthMs, log, metrics, secrets,
    databasesOf: (slug) => state.list<Workspace>('workspaces', slug).map((w) => w.database),
    onCellStart: (slug, engine, cellDir) => { void reattachTables(state, log, slug, engine, cellDir); },
  });
  metrics.cells = cells;
  // Cells of deleted tenants: a tenant's delete marks its cell's directory, changes the state and
  // removes the directory last, so a server killed between left the directory — its databases,
  // its service data — for the next tenant created under that slug to start in. A marked
  // directory whose tenant is gone is removed; one whose tenant is still there (killed before
  // the state change) is unmarked. An unmarked directory of no tenant (a state put back from an
  // older copy?) is never removed here: it is moved aside when a tenant is created under its slug.
  const cellsRoot = path.join(config.dataDir, 'cells');
  for (const slug of fs.existsSync(cellsRoot) ? fs.readdirSync(cellsRoot) : []) {
    if (slug.startsWith(CELL_TRASH)) {
      // A deleted tenant's directory, moved aside to be removed when the server was killed.
      fs.rmSync(path.join(cellsRoot, slug), { recursive: true, force: true });
      log.warn('removed what a tenant delete cut short left of its cell directory', { dir: slug });
      continue;
    }
    if (slug.startsWith('.')) continue;
    const marker = path.join(cellsRoot, slug, CELL_DELETING);
    const marked = fs.existsSync(marker) ? fs.readFileSync(marker, 'utf8') : undefined;
    const t = state.get<Tenant>('tenants', slug);
    if (t) {
      if (marked === t.createdAt) fs.rmSync(marker, { force: true });
      else if (marked !== undefined) log.warn('a cell directory marked as another tenant\'s delete is kept: its tenant of that name exists', { tenant: slug });
      continue;
    }
    if (marked === undefined) {
      log.warn('a cell directory of no tenant is kept (not marked as deleted); it is moved aside if a tenant is created under its name', { tenant: slug, dir: path.join(cellsRoot, slug) });
      continue;
    }
    fs.rmSync(path.join(cellsRoot, slug), { recursive: true, force: true });
    log.warn('removed the cell directory of a tenant that no longer exists (a delete cut short)', { tenant: slug });
  }
  const router = new Router();
  const http = new HttpServer({
    router, log, metrics, requestTimeoutMs: config.requestTimeoutMs, bodyIdleMs: config.bodyIdleMs, maxBodyBytes: config.maxBodyBytes,
    ...(config.dev ? { hostAllowed: loopbackHost } : {}),
    trustedProxies: config.trustedProxies,
    maxConnectionsPerClient: config.maxConnectionsPerClient,
    keepAliveMs: config.keepAliveMs,
  });
  if (!config.dev && config.publicUrl && !config.trustedProxies) {
    log.warn('ROOST_PUBLIC_URL is set (a reverse proxy?) but no proxy is trusted: every request counts as the proxy\'s address, in audit records and in the login rate limit, which then all logins share', { fix: 'set --trusted-proxies / ROOST_TRUSTED_PROXIES to the proxy\'s addresses' });
  }

  // Placements made before plain http across a network needed the operator's explicit choice.
  for (const t of state.list<Tenant>('tenants')) {
    const p = t.placement;
    if (p.type !== 'clickhouse' || p.allow_plain_http) continue;
    let host: string | undefined;
    try { host = plainHttpHost(new URL(p.url)); } catch { /* refused when used */ }
    if (host) log.warn('a tenant\'s ClickHouse placement is plain http across the network: its password and data cross it in clear', { tenant: t.slug, host, fix: 'move it to https (PATCH /v0/tenants/<slug> with placement.url https://...), or set placement.allow_plain_http to true if that network is trusted' });
  }

  const service = new ServiceLog((tenant) => {
    const t = state.get('tenants', tenant);
    return t ? cells.engineFor(getTenant(state, tenant)) : undefined;
  }, log, undefined, metrics, {
    seconds: { pipe_stats_rt: config.serviceLogRetentionS, endpoint_errors: config.serviceLogRetentionS, datasources_ops_log: config.serviceLogRetentionS, audit_log: config.auditRetentionS },
    everyMs: Number(process.env.ROOST_SERVICE_LOG_PRUNE_INTERVAL_MS || 6 * 3_600_000),
  }, path.join(config.dataDir, 'service-journal'));
  metrics.serviceLog = service;
  // Service rows carry their workspace's id: a workspace renamed keeps them, one created under
  // a deleted one's name does not inherit them.
  service.workspace = (tenant, name) => state.get<Workspace>('workspaces', tenant, name);
  service.workspaces = (tenant) => state.list<Workspace>('workspaces', tenant);
  const audit = createAuditor(service, log, undefined, (id) => http.clientIpOf(id));

  const dropLater = new DropLater((slug) => { const t = state.get<Tenant>('tenants', slug); return t ? cells.engineFor(t) : undefined; }, log, Number(process.env.ROOST_DROP_RETRY_MS) || undefined);
  const app: App = {
    config, log, metrics, state, cells, secrets, operator, router, http, service, audit, dropLater,
    address: { host: config.host, port: config.port },
    stop: async () => {},
  };
  // Every 401/403 any route answers is audited once (most are, where they are decided).
  http.onRefusal = (ctx, e) => auditRefusal(app, ctx, ctx.auth as Credential | undefined, e);
  http.explainFailure = (ctx, e) => deletedMeanwhile(app, ctx, e);
  registerHealthRoutes(app);
  registerTenantRoutes(app);
  registerTenantAuditRoutes(app);
  await registerAuthRoutes(app);
  registerSqlRoutes(app);
  registerDataSourceRoutes(app);
  resumeTableDrops(app);
  registerPipeRoutes(app);
  registerJobRoutes(app);
  app.events = registerEventRoutes(app);
  if (config.dev) {
    registerDevRoutes(app);
    await seedDevelopment(app);
  }

  let addr: { port: number };
  try {
    addr = await http.listen(config.port, config.host);
  } catch (e) {
    // Nothing listens (the port taken): what started is stopped before startApp lets the data
    // directory's lock go — a tenant's cell went on holding its engine, the process never ended,
    // and a second server given the directory got its lock and not its cell (black-box round).
    await app.events?.close().catch(() => {});
    await service.close().catch(() => {});
    await dropLater.close();
    await state.close();
    await cells.closeAll();
    throw e;
  }
  app.address = { host: config.host, port: addr.port };
  await authListening(app);

  let stopping: Promise<void> | undefined;
  app.stop = (reason = 'stop') => {
    stopping ??= (async () => {
      log.info('shutting down', { reason, inflight: http.inflight });
      const { drained } = await http.drain(config.shutdownGraceMs);
      if (!drained) log.warn('grace period over; closing the remaining requests');
      await app.events?.close().catch((e) => log.error('events buffer flush failed at shutdown; it is retried at the next start', { err: e }));
      await service.close().catch((e) => log.error('service log flush failed at shutdown', { err: e }));
      await dropLater.close();
      await state.close();
      await cells.closeAll();
      unlock();
      log.info('stopped', { reason });
    })();
    return stopping;
  };

  log.info('listening', {
    url: `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${addr.port}`,
    data: config.dataDir, dev: config.dev, state_store: state.storeKind,
    operator_token: operator.file ?? 'from ROOST_OPERATOR_TOKEN',
    csv_simd: native().csvSimd() as string,
  });
  // Each tenant's cell keeps files open per table (and per part while it loads): under a low limit
  // a cell with ~90 tables could not start again after it ran out (found by the disk round).
  const files = openFilesLimit();
  if (files !== undefined && files < 4096) {
    log.warn('the open-files limit is low', { limit: files, note: 'raise it to 65536 or more (ulimit -n, systemd LimitNOFILE=): each tenant cell keeps files of every table open, and one that runs out cannot start again until it is raised' });
  }
  if (operator.created) {
    log.info('operator token created', { file: operator.file, note: 'keep it secret: it administers every tenant' });
  }
  return app;
}

/**
 * Tables a cell found with an empty definition at its start (written so on a full disk) and moved
 * aside: attached again with their data source's definition, their parts still in their directory
 * (cells/metadata-repair.ts). One no data source names any more is let go (said in the log).
 */
async function reattachTables(state: State, log: Logger, slug: string, engine: Engine, cellDir: string): Promise<void> {
  const list = readReattach(cellDir);
  if (!list.length) return;
  const left: Reattach[] = [];
  for (const r of list) {
    const ws = state.list<Workspace>('workspaces', slug).find((w) => w.database === r.database);
    const ds = ws && listDataSources(state, slug, ws.name).find((d) => d.table === r.table || `${d.table}_quarantine` === r.table);
    if (!ws || !ds) {
      log.warn('a table moved aside at its cell\'s start belongs to no data source; not attached again', { tenant: slug, database: r.database, table: r.table, uuid: r.uuid });
      continue;
    }
    try {
      await reattachTable(engine, ws, ds, r.table, r.uuid);
      log.warn('a table whose definition was empty was attached again with its rows', { tenant: slug, workspace: ws.name, datasource: ds.name, table: r.table });
    } catch (err) {
      log.error('a table whose definition was empty could not be attached again; tried at the cell\'s next start', { tenant: slug, table: r.table, err });
      left.push(r);
    }
  }
  try { writeReattach(cellDir, left); } catch (err) { log.error('the list of tables to attach again could not be written', { tenant: slug, err }); }
}
