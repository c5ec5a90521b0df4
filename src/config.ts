/**
 * Configuration: flags win over environment, environment over defaults.
 * Every value is validated once here; the rest of the server trusts `Config`.
 */
import os from 'node:os';
import path from 'node:path';
import { parseTrustedProxies, type TrustedProxies } from './http/client-ip.js';
import { isLoopbackHost } from '../auth/loopback.js';
import { parseIdpHosts, type IdpHosts } from '../auth/oidc/idp-hosts.js';

export interface Config {
  host: string;
  port: number;
  dataDir: string;
  dev: boolean;
  operatorToken: string | undefined;
  /** A secret that reads GET /metrics and nothing else (Prometheus' bearer token). */
  metricsToken: string | undefined;
  redisUrl: string | undefined;
  secretKey: string | undefined;
  logLevel: 'debug' | 'info' | 'warn' | 'error' | 'silent';
  /** Largest request body accepted on routes without their own limit (bytes). */
  maxBodyBytes: number;
  /** Largest upload body (CSV/NDJSON ingest) in bytes. */
  maxUploadBytes: number;
  /** A request that has not finished after this long is answered 408 (ms). */
  requestTimeoutMs: number;
  /** A request body from which no byte arrives for this long is answered 408 (ms); 0: no limit but requestTimeoutMs. */
  bodyIdleMs: number;
  /** Default maximum execution time of one query (ms). */
  queryTimeoutMs: number;
  /** Default memory limit of one query (ClickHouse max_memory_usage) for tenants without their own; 0: none. */
  queryMemoryBytes: number;
  /** Open connections one client address may hold (trusted proxies: no limit). */
  maxConnectionsPerClient: number;
  /** How long an idle keep-alive connection is kept open for the client's next request (ms). */
  keepAliveMs: number;
  /** A cell with no request for this long is stopped (ms). */
  cellIdleMs: number;
  /** Interval of cell health checks (ms). */
  cellHealthMs: number;
  /** How long SIGTERM waits for in-flight requests before closing them (ms). */
  shutdownGraceMs: number;
  eventsFlushMs: number;
  /** Logins one client address may start a second (bursts of ten seconds' worth); 0: no limit. */
  loginRate: number;
  /** Logins in progress kept at most (OIDC and SAML each). */
  loginsPending: number;
  /** Reverse proxies whose X-Forwarded-For names the client (audit records, login rate limits). */
  trustedProxies: TrustedProxies | undefined;
  /** ROOST_PUBLIC_URL without its trailing slashes: the server's base URL as clients reach it (behind a proxy); undefined: the bound address. */
  publicUrl?: string;
  /** Hosts the server's requests for OIDC connections may reach (issuer, JWKS, token, UserInfo); unset: any https host. */
  idpHosts: IdpHosts | undefined;
  /** Seconds rows of tinybird.pipe_stats_rt, endpoint_errors and datasources_ops_log are kept; 0: forever. */
  serviceLogRetentionS: number;
  /** Seconds rows of roost.audit_log are kept; 0: forever. */
  auditRetentionS: number;
}

interface Option {
  flag: string;
  env: string;
  def: string | undefined;
  help: string;
  bool?: boolean;
}

/**
 * A query without a memory limit could take the machine: one `uniqExact` over billions of numbers
 * grew its cell to 6 GB in 20 s, and the kernel's OOM killer picks any process (another tenant's
 * cell, the server). A quarter of the machine's memory by default.
 */
const DEFAULT_QUERY_MEMORY_BYTES = Math.floor(machineMemory() / 4);

/** The memory this process may use: the machine's, or its container's (cgroup) limit when lower. */
function machineMemory(): number {
  const total = os.totalmem();
  const limit = (process as { constrainedMemory?: () => number | undefined }).constrainedMemory?.();
  return limit && limit > 0 && limit < total ? limit : total;
}

/** Settings read from the environment only (helpText's second table). */
type EnvOnly = 'publicUrl';
type Flagged = Exclude<keyof Config, EnvOnly>;

/** The table the README documents; `roost --help` prints it. */
export const OPTIONS: Record<Flagged, Option> = {
  host: { flag: '--host', env: 'ROOST_HOST', def: '127.0.0.1', help: 'address to listen on' },
  port: { flag: '--port', env: 'ROOST_PORT', def: '7181', help: 'TCP port (0 picks a free one)' },
  dataDir: { flag: '--data', env: 'ROOST_DATA', def: './data', help: 'data directory (state, cells, secrets)' },
  dev: { flag: '--dev', env: 'ROOST_DEV', def: 'false', help: 'development mode: loopback only, seeds tenant "local", serves /tokens and a development IdP', bool: true },
  operatorToken: { flag: '--operator-token', env: 'ROOST_OPERATOR_TOKEN', def: undefined, help: 'operator token (else generated into <data>/operator-token)' },
  metricsToken: { flag: '--metrics-token', env: 'ROOST_METRICS_TOKEN', def: undefined, help: 'token that reads /metrics only (else /metrics needs the operator token; open in --dev)' },
  redisUrl: { flag: '--redis-url', env: 'ROOST_REDIS_URL', def: undefined, help: 'Redis state store instead of the local journal (not yet available)' },
  secretKey: { flag: '--secret-key', env: 'ROOST_SECRET_KEY', def: undefined, help: 'key for secrets at rest (else generated into <data>/secret-key)' },
  logLevel: { flag: '--log-level', env: 'ROOST_LOG_LEVEL', def: 'info', help: 'debug | info | warn | error | silent' },
  maxBodyBytes: { flag: '--max-body', env: 'ROOST_MAX_BODY', def: '1048576', help: 'largest JSON/form request body in bytes' },
  maxUploadBytes: { flag: '--max-upload', env: 'ROOST_MAX_UPLOAD', def: '10737418240', help: 'largest ingest body in bytes' },
  requestTimeoutMs: { flag: '--request-timeout', env: 'ROOST_REQUEST_TIMEOUT_MS', def: '300000', help: 'request deadline in ms' },
  bodyIdleMs: { flag: '--body-idle-timeout', env: 'ROOST_BODY_IDLE_MS', def: '60000', help: 'a request body from which no byte arrives for this many ms is answered 408 and its connection closed; 0: only --request-timeout' },
  queryTimeoutMs: { flag: '--query-timeout', env: 'ROOST_QUERY_TIMEOUT_MS', def: '30000', help: 'default query time limit in ms' },
  queryMemoryBytes: { flag: '--query-memory', env: 'ROOST_QUERY_MEMORY_BYTES', def: String(DEFAULT_QUERY_MEMORY_BYTES), help: 'default memory limit of one query in bytes, for tenants without query_memory_bytes (default: a quarter of this machine\'s memory); 0: none' },
  keepAliveMs: { flag: '--keep-alive-timeout', env: 'ROOST_KEEP_ALIVE_MS', def: '65000', help: 'an idle keep-alive connection is closed after this many ms; keep it above the idle timeout of a load balancer in front (often 60 s), or the balancer may send a request on a connection the server is closing' },
  maxConnectionsPerClient: { flag: '--max-connections-per-client', env: 'ROOST_MAX_CONNECTIONS_PER_CLIENT', def: '1024', help: 'open connections one client address (an IPv6 /64) may hold; beyond, 429 and closed; trusted proxies are not limited' },
  cellIdleMs: { flag: '--cell-idle', env: 'ROOST_CELL_IDLE_MS', def: '600000', help: 'stop a cell after this many idle ms' },
  cellHealthMs: { flag: '--cell-health', env: 'ROOST_CELL_HEALTH_MS', def: '5000', help: 'cell health-check interval in ms' },
  shutdownGraceMs: { flag: '--shutdown-grace', env: 'ROOST_SHUTDOWN_GRACE_MS', def: '10000', help: 'drain time on SIGTERM in ms' },
  eventsFlushMs: { flag: '--events-flush', env: 'ROOST_EVENTS_FLUSH_MS', def: '500', help: 'buffered /v0/events are moved into the engine every this many ms (sooner when 32 MiB wait)' },
  loginRate: { flag: '--login-rate', env: 'ROOST_LOGIN_RATE', def: '10', help: 'logins one client address (IPv4, IPv6 /48) may start a second, bursts of 10 s worth; 429 beyond; 0: no limit' },
  loginsPending: { flag: '--logins-pending', env: 'ROOST_LOGINS_PENDING', def: '10000', help: 'logins in progress kept at most (OIDC, SAML each); more give up the oldest of the client holding the most' },
  trustedProxies: { flag: '--trusted-proxies', env: 'ROOST_TRUSTED_PROXIES', def: undefined, help: 'reverse proxies (addresses, subnets; comma-separated) whose X-Forwarded-For names the client; else the peer address is the client' },
  serviceLogRetentionS: { flag: '--service-log-retention', env: 'ROOST_SERVICE_LOG_RETENTION', def: '90d', help: 'how long rows of tinybird.pipe_stats_rt, endpoint_errors and datasources_ops_log are kept (30d, 12h, 90m, 45s; 0: forever); older ones are deleted as each tenant is used' },
  auditRetentionS: { flag: '--audit-retention', env: 'ROOST_AUDIT_RETENTION', def: '400d', help: 'how long rows of roost.audit_log are kept (as --service-log-retention; 0: forever)' },
  idpHosts: { flag: '--idp-hosts', env: 'ROOST_IDP_HOSTS', def: undefined, help: 'the only hosts OIDC connections may use and the server fetches IdP documents from (comma-separated: idp.acme.com, *.acme.com, 10.0.0.5:8443; no port: 443); * any; unset: any https host, warned at start' },
};

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

/** `0` (no limit) or at least 16 MiB. */
function memoryLimit(name: string, raw: string, problems: string[]): number {
  const n = intIn(name, raw, 0, Number.MAX_SAFE_INTEGER, problems);
  if (n !== 0 && n < 16 << 20) problems.push(`${name} must be 0 (no limit) or at least ${16 << 20} bytes, got ${n}`);
  return n;
}

function intIn(name: string, raw: string, min: number, max: number, problems: string[]): number {
  if (!/^\d+$/.test(raw)) {
    problems.push(`${name} must be a whole number, got "${raw}"`);
    return min;
  }
  const n = Number(raw);
  if (n < min || n > max) problems.push(`${name} must be between ${min} and ${max}, got ${n}`);
  return n;
}

/** A retention as seconds: `<n>d`, `<n>h`, `<n>m` or `<n>s` (at least one second), or `0` (forever). */
export function retentionSeconds(name: string, raw: string, problems: string[]): number {
  const m = /^\s*(\d+)\s*([dhms]?)\s*$/.exec(raw);
  if (!m || (!m[2] && !/^0+$/.test(m[1]!))) {
    problems.push(`${name} must be a duration such as 90d, 12h, 30m or 45s, or 0 to keep rows forever; got "${raw}"`);
    return 0;
  }
  const n = Number(m[1]) * ({ d: 86_400, h: 3_600, m: 60, s: 1, '': 0 } as Record<string, number>)[m[2]!]!;
  if (n === 0 && m[2]) {
    problems.push(`${name}: "${raw}" would delete every row at once; give 0 alone to keep rows forever, or a duration of at least 1s`);
    return 0;
  }
  if (n > 100 * 366 * 86_400) {
    problems.push(`${name} must be at most 100 years (or 0 to keep rows forever); got "${raw}"`);
    return 0;
  }
  return n;
}

function bool(name: string, raw: string, problems: string[]): boolean {
  if (/^(1|true|yes|on)$/i.test(raw)) return true;
  if (/^(0|false|no|off|)$/i.test(raw)) return false;
  problems.push(`${name} must be true or false, got "${raw}"`);
  return false;
}

/** Parses argv flags (`--port 7300` or `--port=7300`) and the environment. */
export function loadConfig(argv: string[], env: NodeJS.ProcessEnv = process.env): Config {
  const problems: string[] = [];
  const byFlag = new Map(Object.entries(OPTIONS).map(([k, o]) => [o.flag, k as Flagged]));
  const fromFlags = new Map<Flagged, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const eq = arg.indexOf('=');
    const flag = eq > 0 ? arg.slice(0, eq) : arg;
    const key = byFlag.get(flag);
    if (!key) {
      problems.push(`unknown option ${flag} (see roost --help)`);
      continue;
    }
    if (OPTIONS[key].bool) {
      fromFlags.set(key, eq > 0 ? arg.slice(eq + 1) : 'true');
    } else if (eq > 0) {
      fromFlags.set(key, arg.slice(eq + 1));
    } else if (i + 1 < argv.length) {
      fromFlags.set(key, argv[++i]!);
    } else {
      problems.push(`option ${flag} needs a value`);
    }
  }
  const raw = (k: Flagged): string | undefined => fromFlags.get(k) ?? env[OPTIONS[k].env] ?? OPTIONS[k].def;
  const name = (k: Flagged) => `${OPTIONS[k].flag} / ${OPTIONS[k].env}`;

  const level = raw('logLevel')!;
  if (!['debug', 'info', 'warn', 'error', 'silent'].includes(level)) problems.push(`${name('logLevel')} must be one of debug, info, warn, error, silent, got "${level}"`);
  const host = raw('host')!;
  if (!host || /\s/.test(host)) problems.push(`${name('host')} must be a host name or IP address`);
  const dev = bool(name('dev'), raw('dev')!, problems);
  if (dev && !isLoopbackHost(host)) problems.push(`development mode only binds loopback addresses (127.0.0.1, ::1, localhost); got ${name('host')}=${host}`);
  const dataRaw = raw('dataDir')!;
  if (!dataRaw) problems.push(`${name('dataDir')} must not be empty`);
  const opToken = raw('operatorToken');
  if (opToken !== undefined && opToken.length < 32) problems.push(`${name('operatorToken')} must be at least 32 characters`);
  const metricsToken = raw('metricsToken');
  if (metricsToken !== undefined && metricsToken.length < 32) problems.push(`${name('metricsToken')} must be at least 32 characters`);
  if (metricsToken !== undefined && opToken !== undefined && metricsToken === opToken) problems.push(`${name('metricsToken')} must differ from the operator token`);
  const redisUrl = raw('redisUrl');
  if (redisUrl !== undefined && !/^rediss?:\/\//.test(redisUrl)) problems.push(`${name('redisUrl')} must start with redis:// or rediss://`);
  const proxiesRaw = raw('trustedProxies');
  const proxies = proxiesRaw === undefined ? undefined : parseTrustedProxies(proxiesRaw);
  for (const p of proxies?.problems ?? []) problems.push(`${name('trustedProxies')}: ${p}`);
  const idpHostsRaw = raw('idpHosts');
  const idpHosts = idpHostsRaw === undefined ? undefined : parseIdpHosts(idpHostsRaw);
  for (const p of idpHosts?.problems ?? []) problems.push(`${name('idpHosts')}: ${p}`);
  const secretKey = raw('secretKey');
  if (secretKey !== undefined && !/^[0-9a-fA-F]{64}$/.test(secretKey)) problems.push(`${name('secretKey')} must be 64 hex characters (32 bytes)`);

  const cfg: Config = {
    host,
    port: intIn(name('port'), raw('port')!, 0, 65535, problems),
    dataDir: path.resolve(dataRaw || '.'),
    dev,
    operatorToken: opToken,
    metricsToken,
    redisUrl,
    secretKey,
    logLevel: level as Config['logLevel'],
    maxBodyBytes: intIn(name('maxBodyBytes'), raw('maxBodyBytes')!, 1024, 1 << 30, problems),
    maxUploadBytes: intIn(name('maxUploadBytes'), raw('maxUploadBytes')!, 1024, Number.MAX_SAFE_INTEGER, problems),
    requestTimeoutMs: intIn(name('requestTimeoutMs'), raw('requestTimeoutMs')!, 100, 86_400_000, problems),
    bodyIdleMs: intIn(name('bodyIdleMs'), raw('bodyIdleMs')!, 0, 86_400_000, problems),
    queryTimeoutMs: intIn(name('queryTimeoutMs'), raw('queryTimeoutMs')!, 10, 86_400_000, problems),
    queryMemoryBytes: memoryLimit(name('queryMemoryBytes'), raw('queryMemoryBytes')!, problems),
    maxConnectionsPerClient: intIn(name('maxConnectionsPerClient'), raw('maxConnectionsPerClient')!, 1, 1_000_000, problems),
    keepAliveMs: intIn(name('keepAliveMs'), raw('keepAliveMs')!, 1, 3_600_000, problems),
    cellIdleMs: intIn(name('cellIdleMs'), raw('cellIdleMs')!, 100, 86_400_000, problems),
    cellHealthMs: intIn(name('cellHealthMs'), raw('cellHealthMs')!, 50, 3_600_000, problems),
    shutdownGraceMs: intIn(name('shutdownGraceMs'), raw('shutdownGraceMs')!, 0, 3_600_000, problems),
    eventsFlushMs: intIn(name('eventsFlushMs'), raw('eventsFlushMs')!, 10, 3_600_000, problems),
    loginRate: intIn(name('loginRate'), raw('loginRate')!, 0, 1_000_000, problems),
    loginsPending: intIn(name('loginsPending'), raw('loginsPending')!, 10, 10_000_000, problems),
    trustedProxies: proxies?.proxies,
    publicUrl: publicUrlOf(env.ROOST_PUBLIC_URL, problems),
    idpHosts: idpHosts?.hosts,
    serviceLogRetentionS: retentionSeconds(name('serviceLogRetentionS'), raw('serviceLogRetentionS')!, problems),
    auditRetentionS: retentionSeconds(name('auditRetentionS'), raw('auditRetentionS')!, problems),
  };
  // Environment-only settings, read where they are used (cells/embedded.ts, auth/abandoned-queries.ts),
  // checked here so that a bad one stops the start like any other value (not a stack trace, or
  // silently NaN).
  const cancelGrace = env.ROOST_CELL_CANCEL_GRACE_MS;
  if (cancelGrace) intIn('ROOST_CELL_CANCEL_GRACE_MS', cancelGrace, 0, 3_600_000, problems);
  const abandoned = env.ROOST_ABANDONED_RESTARTS;
  if (abandoned) intIn('ROOST_ABANDONED_RESTARTS', abandoned, 0, 1_000_000, problems);
  const abandonedWindow = env.ROOST_ABANDONED_RESTARTS_WINDOW_S;
  if (abandonedWindow) intIn('ROOST_ABANDONED_RESTARTS_WINDOW_S', abandonedWindow, 1, 7 * 86_400, problems);
  const fileResult = env.ROOST_MAX_FILE_RESULT_BYTES;
  if (fileResult) intIn('ROOST_MAX_FILE_RESULT_BYTES', fileResult, 1 << 20, Number.MAX_SAFE_INTEGER, problems);
  const svcPending = env.ROOST_SERVICE_LOG_MAX_PENDING_BYTES;
  if (svcPending) intIn('ROOST_SERVICE_LOG_MAX_PENDING_BYTES', svcPending, 65_536, Number.MAX_SAFE_INTEGER, problems);
  const svcPrune = env.ROOST_SERVICE_LOG_PRUNE_INTERVAL_MS;
  if (svcPrune) intIn('ROOST_SERVICE_LOG_PRUNE_INTERVAL_MS', svcPrune, 100, 30 * 86_400_000, problems);
  const svcTimeout = env.ROOST_SERVICE_WRITE_TIMEOUT_MS;
  if (svcTimeout) intIn('ROOST_SERVICE_WRITE_TIMEOUT_MS', svcTimeout, 100, 3_600_000, problems);
  // Read where they are used, each falling back to its default on a value it cannot use: a typo
  // (ROOST_CLIENT_STALL_MS=xyz) started the server on the default without a word.
  for (const [key, min, max] of [
    ['ROOST_RESULT_SPOOL_BYTES', 1 << 20, Number.MAX_SAFE_INTEGER],
    ['ROOST_RESULT_SPOOL_TOTAL_BYTES', 1 << 20, Number.MAX_SAFE_INTEGER],
    ['ROOST_RESULT_MEMORY_TOTAL_BYTES', 1 << 20, Number.MAX_SAFE_INTEGER],
    ['ROOST_CLIENT_STALL_MS', 100, 86_400_000],
    ['ROOST_NDJSON_WORKERS', 0, 64],
    ['ROOST_DROP_RETRY_MS', 100, 86_400_000],
    ['ROOST_ENGINE_MIN_FREE_MB', 0, Number.MAX_SAFE_INTEGER],
  ] as const) {
    const v = env[key];
    if (v) intIn(key, v, min, max, problems);
  }
  const ndjsonFast = env.ROOST_NDJSON_FAST;
  if (ndjsonFast && ndjsonFast !== '0' && ndjsonFast !== '1') problems.push(`ROOST_NDJSON_FAST must be 0 or 1 (0 converts NDJSON bodies as text, the reference the fast byte path is tested against), got "${ndjsonFast}"`);
  // Read by the native addon (native/core/csv/reader.cc), which ignores other values.
  const csvSimd = env.ROOST_CSV_SIMD;
  if (csvSimd && !['sse2', 'avx2', 'avx512'].includes(csvSimd)) problems.push(`ROOST_CSV_SIMD must be sse2, avx2 or avx512 (a cap on the CSV splitter's vector instructions), got "${csvSimd}"`);
  if (redisUrl) problems.push(`${name('redisUrl')}: the Redis state store is not available in this version; unset it to use the local journal`);
  if (problems.length) throw new ConfigError(problems);
  return cfg;
}

export function helpText(): string {
  const rows = Object.values(OPTIONS).map((o) => `  ${(o.flag + (o.bool ? '' : ' <v>')).padEnd(24)} ${o.env.padEnd(26)} ${o.help}${o.def !== undefined ? ` (default ${o.def})` : ''}`);
  const envOnly = [
    ['ROOST_PUBLIC_URL', "the server's public base URL behind a proxy (OIDC redirect URIs, SAML ACS and entity ids) (default the bound address)"],
    ['ROOST_CELL_CANCEL_GRACE_MS', 'how long a cancelled query may take to stop before its cell is restarted, when other work waits for the engine behind it (else it runs on to its time limit), in ms (default 1000)'],
    ['ROOST_ABANDONED_RESTARTS', "restarts of a tenant's cell that one credential's queries may cause by being left while still running (each within ROOST_CELL_CANCEL_GRACE_MS) before its queries are refused with 429; 0: no limit (default 3)"],
    ['ROOST_ABANDONED_RESTARTS_WINDOW_S', 'the window of ROOST_ABANDONED_RESTARTS, in seconds (default 600)'],
    ['ROOST_MAX_FILE_RESULT_BYTES', 'cap on the uncompressed bytes of a Parquet/Arrow/ORC/Avro result, which an embedded cell builds whole on disk before sending it (default 1073741824)'],
    ['ROOST_SERVICE_LOG_MAX_PENDING_BYTES', "bytes of service rows (tinybird.*, roost.*) that wait per tenant and table for the tenant's engine; past it the oldest are dropped (default 33554432)"],
    ['ROOST_SERVICE_LOG_PRUNE_INTERVAL_MS', "least time between two deletions of a tenant's service rows past their retention, in ms (default 21600000: six hours)"],
    ['ROOST_SERVICE_WRITE_TIMEOUT_MS', 'time limit of each statement the service log runs (its writes, the service tables check), in ms (default 30000)'],
    ['ROOST_CSV_SIMD', "cap on the CSV splitter's vector instructions: sse2, avx2 or avx512 (default the CPU's best)"],
    ['ROOST_RESULT_SPOOL_BYTES', "largest spool file of one query result the client reads slower than the engine writes, in bytes (default 1073741824, at least 1048576)"],
    ['ROOST_RESULT_SPOOL_TOTAL_BYTES', 'cap on the bytes of all result spool files at once (default 8589934592, at least 1048576)'],
    ['ROOST_RESULT_MEMORY_TOTAL_BYTES', 'cap on the bytes of all results held in memory for clients that have not read them yet; past it they go to spool files (default 268435456, at least 1048576)'],
    ['ROOST_CLIENT_STALL_MS', 'a client that takes nothing of a result past its spool for this long is cut off, in ms (default 60000)'],
    ['ROOST_NDJSON_WORKERS', 'worker threads converting NDJSON bodies; 0 converts them on the main thread (default the cores, 2 to 4)'],
    ['ROOST_NDJSON_FAST', "1: NDJSON bodies converted as bytes (the fast path); 0: as text (default 1)"],
    ['ROOST_DROP_RETRY_MS', "how often a drop of tables the tenant's engine could not drop then is tried again, in ms (default 30000)"],
    ['ROOST_ENGINE_MIN_FREE_MB', "an embedded cell refuses statements that write the engine's definitions (creates, renames, ALTERs) with 507 while its disk has less free than this, in MiB (default 16)"],
  ].map(([env, help]) => `  ${'(environment only)'.padEnd(24)} ${env!.padEnd(26)} ${help}`);
  return [...rows, ...envOnly].join('\n');
}

/** ROOST_PUBLIC_URL checked (an http(s) URL without query or fragment), its trailing slashes taken off. */
function publicUrlOf(v: string | undefined, problems: string[]): string | undefined {
  if (!v) return undefined;
  if (!/^https?:\/\/[^\s/?#]+(\/[^\s?#]*)?$/.test(v)) {
    problems.push(`ROOST_PUBLIC_URL must be an http(s) URL without query or fragment (the server's public base URL), got "${v}"`);
    return undefined;
  }
  return v.replace(/\/+$/, '');
}
