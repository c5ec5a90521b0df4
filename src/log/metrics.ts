/** Prometheus metrics (`GET /metrics`), one registry per server. */
import client from 'prom-client';
import { ndjsonWorkerBodies } from '../ingest/ndjson-pool.js';
import { resultMemoryBytes } from '../query/result-spool.js';

export function createMetrics() {
  const registry = new client.Registry();
  // The default metrics' names start with process_ or nodejs_ already: `roost_` before them
  // (`roost_process_` made roost_process_process_cpu_seconds_total).
  client.collectDefaultMetrics({ register: registry, prefix: 'roost_' });
  const m = {
    registry,
    httpRequests: new client.Counter({ name: 'roost_http_requests_total', help: 'HTTP requests by route and status', labelNames: ['method', 'route', 'status'], registers: [registry] }),
    httpDuration: new client.Histogram({
      name: 'roost_http_request_duration_seconds', help: 'HTTP request latency by route and status', labelNames: ['method', 'route', 'status'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30], registers: [registry],
    }),
    cellStarts: new client.Counter({ name: 'roost_cell_starts_total', help: 'Cell processes started', labelNames: ['tenant'], registers: [registry] }),
    cellCrashes: new client.Counter({ name: 'roost_cell_crashes_total', help: 'Cell processes that died unexpectedly', labelNames: ['tenant'], registers: [registry] }),
    cellsRunning: new client.Gauge({ name: 'roost_cells_running', help: 'Cell processes running now', registers: [registry] }),
    engineQuerySeconds: new client.Histogram({
      name: 'roost_engine_query_duration_seconds', help: 'Engine query time by engine kind and outcome', labelNames: ['engine', 'outcome'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60], registers: [registry],
    }),
    ingestRows: new client.Counter({ name: 'roost_ingest_rows_total', help: 'Rows stored by ingestion', labelNames: ['tenant', 'format'], registers: [registry] }),
    ingestBytes: new client.Counter({ name: 'roost_ingest_bytes_total', help: 'Body bytes ingested', labelNames: ['tenant', 'format'], registers: [registry] }),
    quarantinedRows: new client.Counter({ name: 'roost_quarantined_rows_total', help: 'Rows sent to quarantine', labelNames: ['tenant', 'format'], registers: [registry] }),
    ingestOps: new client.Counter({ name: 'roost_datasource_operations_total', help: 'Data source operations by kind and result', labelNames: ['tenant', 'event', 'result'], registers: [registry] }),
    nativeParseSeconds: new client.Histogram({ name: 'roost_native_parse_seconds', help: 'Time spent in native CSV parsing per import', buckets: [0.001, 0.01, 0.1, 1, 10, 100], registers: [registry] }),
    stateWrites: new client.Counter({ name: 'roost_state_writes_total', help: 'Control-plane state writes acknowledged', registers: [registry] }),
    serviceUpgradesPending: new client.Gauge({
      name: 'roost_service_tables_upgrade_pending', labelNames: ['tenant'], registers: [registry],
      help: 'Service tables (tinybird.*, roost.*) of a tenant whose upgrade to the current columns failed and waits to be tried again; queries naming their new columns fail meanwhile',
    }),
    serviceUpgradeFailures: new client.Counter({ name: 'roost_service_table_upgrade_failures_total', help: 'Failed upgrades of a service table to the current columns (each try of each table)', labelNames: ['tenant'], registers: [registry] }),
    serviceLogDroppedRows: new client.Counter({ name: 'roost_service_log_dropped_rows_total', help: 'Service rows (tinybird.*, roost.*) dropped, oldest first, because more than the bound per tenant and table waited for the tenant\'s engine (slow, down or hanging)', labelNames: ['tenant', 'table'], registers: [registry] }),
    serviceLogPrunedRows: new client.Counter({ name: 'roost_service_log_pruned_rows_total', help: 'Service rows (tinybird.*, roost.*) deleted because they were older than their retention (--service-log-retention, --audit-retention)', labelNames: ['tenant', 'table'], registers: [registry] }),
    /** Set by the app once its service log exists: read when /metrics is scraped. */
    serviceLog: undefined as { pendingBytes(): Map<string, number> } | undefined,
    groupedInserts: new client.Counter({ name: 'roost_grouped_inserts_total', help: 'INSERT statements of /v0/events wait=true requests (group commit: one statement may carry several requests)', labelNames: ['tenant'], registers: [registry] }),
    groupedInsertRequests: new client.Counter({ name: 'roost_grouped_insert_requests_total', help: '/v0/events wait=true requests whose rows went in through a grouped INSERT (÷ roost_grouped_inserts_total: requests per statement)', labelNames: ['tenant'], registers: [registry] }),
    /** Set by the app once its cells exist: read when /metrics is scraped. */
    cells: undefined as { running(): Array<{ tenant: string; sessions: number }> } | undefined,
    /** Set by the events API once its buffer exists: read when /metrics is scraped. */
    eventsBuffer: undefined as { pendingBytes: number; pendingRequests: number } | undefined,
  };
  new client.Gauge({
    name: 'roost_events_buffer_pending_bytes', help: 'Bytes of /v0/events bodies acknowledged (202) and not yet written to the engine', registers: [registry],
    collect() { this.set(m.eventsBuffer?.pendingBytes ?? 0); },
  });
  new client.Gauge({
    name: 'roost_events_buffer_pending_requests', help: '/v0/events requests acknowledged (202) and not yet written to the engine', registers: [registry],
    collect() { this.set(m.eventsBuffer?.pendingRequests ?? 0); },
  });
  new client.Gauge({
    name: 'roost_service_log_pending_bytes', help: 'Bytes of service rows (tinybird.*, roost.*) of a tenant not yet written to its engine (waiting, and in a write now)', labelNames: ['tenant'], registers: [registry],
    collect() {
      this.reset();
      for (const [tenant, n] of m.serviceLog?.pendingBytes() ?? []) this.set({ tenant }, n);
    },
  });
  new client.Gauge({
    name: 'roost_cell_engine_sessions', help: 'Engine sessions a running cell has open (at its last health check): opened as the tenant\'s queries come at once, up to its query_parallelism', labelNames: ['tenant'], registers: [registry],
    collect() {
      this.reset();
      for (const c of m.cells?.running() ?? []) this.set({ tenant: c.tenant }, c.sessions);
    },
  });
  new client.Gauge({
    name: 'roost_result_memory_bytes', help: 'Bytes of query results held in memory for clients that have not read them yet (all results; capped by ROOST_RESULT_MEMORY_TOTAL_BYTES, past which they go to spool files)', registers: [registry],
    collect() { this.set(resultMemoryBytes()); },
  });
  new client.Counter({
    name: 'roost_ndjson_worker_bodies_total', help: 'NDJSON bodies (events requests, NDJSON imports, buffered-events flushes) converted in worker threads rather than on the server thread (small bodies are not)', registers: [registry],
    collect() { this.reset(); this.inc(ndjsonWorkerBodies()); },
  });
  return m;
}

export type Metrics = ReturnType<typeof createMetrics>;

/**
 * The registry's text exposition. prom-client (15.1) writes a NaN sample as `Nan` — the event
 * loop lag gauges are NaN when no delay was sampled since the last scrape — which Prometheus
 * reads only because Go's float parser ignores case; the text format spells it `NaN`, and
 * stricter scrapers (OpenMetrics parsers, line-protocol converters) refuse the whole scrape.
 */
export async function exposition(registry: client.Registry): Promise<string> {
  return (await registry.metrics()).replace(/ Nan$/gm, ' NaN');
}

/**
 * Passes a body through, adding up its bytes in `box.bytes`: the bytes a client sent (after
 * gunzip) for NDJSON imports, whose import result counts the converted rows' bytes instead.
 */
export async function* countingBytes(body: AsyncIterable<Buffer>, box: { bytes: number }): AsyncGenerator<Buffer> {
  for await (const chunk of body) {
    box.bytes += chunk.length;
    yield chunk;
  }
}
