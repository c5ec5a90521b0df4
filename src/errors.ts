/**
 * One error base with stable codes. Handlers and modules throw `RoostError`
 * (or a subclass); the HTTP dispatcher alone turns a code into a status.
 * Tests and callers switch on `code`, never on the message.
 */

/** Every stable error code and the HTTP status it maps to. */
export const ERROR_STATUS = {
  BAD_REQUEST: 400,
  INVALID_PARAMETER: 400,
  INVALID_JSON: 400,
  EMPTY_BODY: 400,
  UNSUPPORTED_FORMAT: 400,
  UNSUPPORTED_MODE: 400,
  SCHEMA_SYNTAX: 400,
  /** The data source's schema needs what the tenant's (older) ClickHouse server lacks. */
  SCHEMA_UNSUPPORTED: 400,
  HEADER_MISMATCH: 400,
  INVALID_UTF8: 400,
  ROW_TOO_LARGE: 400,
  SQL_SYNTAX: 400,
  /** The engine refused a pipe node's SQL when it was saved (src/pipes/engine-check.ts). */
  NODE_SQL_ERROR: 400,
  TEMPLATE_PARAMETER: 400,
  TEMPLATE_SYNTAX: 400,
  TEMPLATE_ERROR: 400,
  TEMPLATE_INVALID: 422,
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  HOST_NOT_ALLOWED: 403,
  TOKEN_EXPIRED: 403,
  CSRF_FAILED: 403,
  /** The credential of an upload was revoked (or lost the scope) before the upload committed: nothing stored. */
  CREDENTIAL_REVOKED: 403,
  NO_ACCESS: 403,
  LOGIN_FAILED: 401,
  INVALID_RETURN_TO: 400,
  /** An OIDC issuer on a host the operator's ROOST_IDP_HOSTS does not list (auth/oidc/idp-hosts.ts). */
  IDP_HOST_NOT_ALLOWED: 400,
  NOT_FOUND: 404,
  ROUTE_NOT_FOUND: 404,
  UNKNOWN_TENANT: 404,
  UNKNOWN_WORKSPACE: 404,
  UNKNOWN_DATASOURCE: 404,
  UNKNOWN_PIPE: 404,
  METHOD_NOT_ALLOWED: 405,
  REQUEST_TIMEOUT: 408,
  QUERY_TIMEOUT: 408,
  CONFLICT: 409,
  ALREADY_EXISTS: 409,
  BODY_TOO_LARGE: 413,
  /** An `Expect` header other than `100-continue`. */
  EXPECTATION_FAILED: 417,
  /** The tenant is at its storage limit: ingest refused, reads go on (tenants/limits.ts). */
  STORAGE_LIMIT: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  SQL_FORBIDDEN: 403,
  SQL_INVALID: 422,
  QUERY_FAILED: 422,
  LIMIT_EXCEEDED: 422,
  /** A replace whose rows all failed validation: the data source is left as it was. */
  NO_VALID_ROWS: 422,
  RATE_LIMITED: 429,
  /** The request line and headers are over node's limit (`--max-http-header-size`, 16 KiB by default). */
  HEADERS_TOO_LARGE: 431,
  CLIENT_CLOSED: 499,
  INTERNAL: 500,
  NOT_AVAILABLE: 501,
  IDP_UNAVAILABLE: 502,
  /**
   * The engine cell stopped after it had the whole insert and before it answered: the rows may be
   * stored. Not 503: a client retrying by itself could store them twice.
   */
  INSERT_OUTCOME_UNKNOWN: 502,
  /**
   * The engine cell stopped while a rows delete ran in it: the delete was persisted by the engine
   * and goes on when it is back (rows may be gone already). Not 503 "retry": it was not undone.
   */
  DELETE_OUTCOME_UNKNOWN: 502,
  CELL_UNAVAILABLE: 503,
  ENGINE_UNAVAILABLE: 503,
  SHUTTING_DOWN: 503,
  /** The state journal could not be restored after a failed write: changes wait for a restart. */
  STATE_UNAVAILABLE: 503,
  /** The server's disk (or a file size limit) refused a write: the request was not completed. */
  INSUFFICIENT_STORAGE: 507,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export interface RoostErrorOptions {
  cause?: unknown;
  /** Extra fields written into the JSON error body (e.g. `offset`, `line`). */
  details?: Record<string, unknown>;
  /** Response headers (e.g. `Retry-After`). */
  headers?: Record<string, string>;
  /** True when the client may simply retry the same request. */
  retryable?: boolean;
}

export class RoostError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown>;
  readonly headers: Record<string, string>;
  readonly retryable: boolean;

  constructor(code: ErrorCode, message: string, opts: RoostErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'RoostError';
    this.code = code;
    this.details = opts.details ?? {};
    this.headers = opts.headers ?? {};
    this.retryable = opts.retryable ?? false;
  }

  get status(): number {
    return ERROR_STATUS[this.code];
  }
}

/** The engine (a cell or a remote ClickHouse) failed in a way the client may retry. */
export class EngineUnavailable extends RoostError {
  constructor(message: string, opts: RoostErrorOptions = {}) {
    super('CELL_UNAVAILABLE', message, { retryable: true, headers: { 'Retry-After': '1' }, ...opts });
  }
}

/**
 * The engine was lost after it had an insert's rows (or its commit statement) and before it
 * confirmed them: they may be stored. Not retryable: a retry can store them twice.
 */
export class InsertOutcomeUnknown extends RoostError {
  constructor(cause: unknown) {
    super('INSERT_OUTCOME_UNKNOWN', 'the tenant\'s engine stopped after it had this request\'s rows and before it confirmed them: they may have been stored. Check (for example by counting rows with a key of this request) before sending them again: a retry can store them twice', { cause });
  }
}

/**
 * Whether a statement that failed so may have run all the same: the engine went while it ran, or
 * its answer never came in time (the client's own timeout) — not a refusal by the server, nor a
 * connection that never opened. For a statement that commits (an insert into the table, an
 * ATTACH, a RENAME or EXCHANGE of a replace) that is an unknown outcome, not "retry later": the
 * remote path answered 503 retryable (or 408) for rows it had stored, and a retry stored them twice.
 */
export function mayHaveRun(e: unknown): boolean {
  if (!(e instanceof RoostError)) return false;
  // (A QueryFailed QUERY_TIMEOUT is the server's own answer: it stopped the statement.)
  if (e.code === 'QUERY_TIMEOUT') return !(e instanceof QueryFailed);
  if (e.code !== 'CELL_UNAVAILABLE' || !e.retryable) return false;
  const cause = (e.cause as { code?: unknown } | undefined)?.code;
  return !(typeof cause === 'string' && /^(ECONNREFUSED|ENOTFOUND|EHOSTUNREACH|ENETUNREACH|EAI_AGAIN)$/.test(cause));
}

/**
 * ClickHouse's codes of errors of its own file work (open, write, create directories, unlink,
 * std::filesystem): only under these is an errno in its text the engine's own trouble. Any other
 * error's text may quote the query or its data (`throwIf(1, 'No space left on device')`, an
 * endpoint parameter `ENOSPC` that fails to parse) and said nothing about the disk.
 */
const ENGINE_FILE_CODES: ReadonlySet<number> = new Set([
  74, 75, 76, 77, // CANNOT_READ_FROM / WRITE_TO_FILE_DESCRIPTOR, CANNOT_OPEN_FILE, CANNOT_CLOSE_FILE
  95, 96, // CANNOT_SEEK_THROUGH_FILE, CANNOT_TRUNCATE_FILE
  298, 458, 573, // seen with errno 24 and 30 in the disk round (a pipe, CANNOT_UNLINK, a file create)
  1000, 1001, // POCO_EXCEPTION, STD_EXCEPTION (std::filesystem errors: create_directories, rename)
]);

/** The engine could not write to its disk: NOT_ENOUGH_SPACE (243), or its own file work failing with ENOSPC/EDQUOT. */
export function engineDiskFull(message: string, clickhouseCode: number | undefined): boolean {
  if (clickhouseCode === 243) return true;
  return clickhouseCode !== undefined && ENGINE_FILE_CODES.has(clickhouseCode) && /No space left on device|errno: (28|122)\b|Disk quota exceeded/i.test(message);
}

/** The engine's own file work refused by the host for another reason than space: read-only (30), permissions (13, 1), out of descriptors (24, 23), I/O (5). */
export function engineFileRefused(message: string, clickhouseCode: number | undefined): string | undefined {
  if (clickhouseCode === undefined || !ENGINE_FILE_CODES.has(clickhouseCode)) return undefined;
  const m = /errno: (30|13|1|24|23|5)\b|(Read-only file system|Permission denied|Operation not permitted|Too many open files|Input\/output error)/i.exec(message);
  if (!m) return undefined;
  const byErrno: Record<string, string> = { 30: 'EROFS', 13: 'EACCES', 1: 'EPERM', 24: 'EMFILE', 23: 'ENFILE', 5: 'EIO' };
  const byText: Record<string, string> = { 'read-only file system': 'EROFS', 'permission denied': 'EACCES', 'operation not permitted': 'EPERM', 'too many open files': 'EMFILE', 'input/output error': 'EIO' };
  return m[1] ? byErrno[m[1]]! : byText[m[2]!.toLowerCase()]!;
}

/**
 * ClickHouse refused or failed a query; `clickhouseCode` is its numeric code. A full disk is
 * `INSUFFICIENT_STORAGE` (507, retryable), a host that refuses the engine's files (read-only,
 * permissions, descriptors) `ENGINE_UNAVAILABLE` (503, retryable), each said without the engine's
 * text (it names the server's paths): they were 422 QUERY_FAILED, "not retryable", and counted
 * with the clients' mistakes.
 */
export class QueryFailed extends RoostError {
  readonly clickhouseCode: number | undefined;
  constructor(message: string, clickhouseCode: number | undefined, opts: RoostErrorOptions = {}) {
    const full = engineDiskFull(message, clickhouseCode);
    const refused = full ? undefined : engineFileRefused(message, clickhouseCode);
    const code: ErrorCode = full ? 'INSUFFICIENT_STORAGE'
      : refused ? 'ENGINE_UNAVAILABLE'
      : clickhouseCode === 159 ? 'QUERY_TIMEOUT'
      : clickhouseCode === 241 || clickhouseCode === 396 || clickhouseCode === 158 ? 'LIMIT_EXCEEDED'
      : 'QUERY_FAILED';
    const text = full ? "the tenant's engine could not write to its disk (full, or over a quota), and this request failed there; retry once the operator has freed space"
      : refused ? `the tenant's engine could not use its files on the server (${refused}: read-only, not permitted, or out of file descriptors), and this request failed there; retry later, and tell the operator`
      : message;
    super(code, text, { ...opts, ...(full || refused ? { retryable: true, headers: { ...opts.headers, 'Retry-After': full ? '30' : '10' } } : {}), details: { ...opts.details, clickhouse_code: clickhouseCode } });
    this.clickhouseCode = clickhouseCode;
  }
}

/** The string `code`s (with the `syscall` where there is one) of `e` and its causes, five deep at most: a system error's errno, wherever it was wrapped. */
export function errorCodes(e: unknown): Array<{ code: string; syscall?: string }> {
  const out: Array<{ code: string; syscall?: string }> = [];
  for (let x = e, depth = 0; x && typeof x === 'object' && depth < 5; x = (x as { cause?: unknown }).cause, depth++) {
    const { code, syscall } = x as { code?: unknown; syscall?: unknown };
    if (typeof code === 'string') out.push(typeof syscall === 'string' ? { code, syscall } : { code });
  }
  return out;
}

export function isRoostError(e: unknown): e is RoostError {
  return e instanceof RoostError;
}

/** A start refused for something the operator must fix (said in one line by the CLI, exit 1, no stack trace). */
export class StartRefused extends Error {}
