/**
 * What one endpoint call leaves in the tenant's service data sources: a row
 * in `tinybird.pipe_stats_rt` for every call, and one in
 * `tinybird.endpoint_errors` for every failed call.
 */
import { JsonText, type ServiceLog } from '../service/service-log.js';
import { chTime } from '../service/time.js';
import { RoostError } from '../errors.js';

export interface EndpointCall {
  tenant: string;
  workspace: string;
  /**
   * The workspace's id when the call came in: its rows are that workspace's even when it is
   * renamed (or deleted and another created under its name) before they are written.
   */
  workspaceId?: string;
  pipeId: string;
  pipeName: string;
  tokenName: string;
  /** The token's id (Tinybird's `token` column): a service token's; '' for other credentials. */
  tokenId?: string;
  /** The request's User-Agent header, if it sent one. */
  userAgent?: string;
  startedAt: number;
  durationMs: number;
  status: number;
  error?: unknown;
  parameters: Record<string, string>;
  requestId: string;
  url: string;
  method: string;
  rows: number;
  readRows: number;
  readBytes: number;
}

function messageOf(e: unknown): string {
  if (e instanceof RoostError) return e.message;
  // Unexpected errors stay in the server log; the tenant sees only that one happened.
  return e ? 'internal error' : '';
}

/** Tinybird's `token` column: the id of the service token used ('' for JWTs and sessions). */
export function tokenIdOf(cred: { kind: string; token?: { id: string } } | undefined): string {
  return cred?.kind === 'token' && cred.token ? cred.token.id : '';
}

/** The User-Agent header of a request, if any. */
export function userAgentOf(headers: { 'user-agent'?: string }): string | undefined {
  const ua = headers['user-agent'];
  return typeof ua === 'string' ? ua : undefined;
}

export function logEndpointCall(service: ServiceLog, c: EndpointCall): void {
  const error = messageOf(c.error);
  const start = chTime(c.startedAt);
  service.write(c.tenant, 'pipe_stats_rt', {
    start_datetime: start, workspace: c.workspace, workspace_id: c.workspaceId, pipe_id: c.pipeId, pipe_name: c.pipeName, token_name: c.tokenName,
    duration: c.durationMs / 1000, read_rows: c.readRows, read_bytes: c.readBytes, result_rows: c.rows,
    status_code: c.status, error: c.error ? 1 : 0, error_message: error, parameters: c.parameters,
    request_id: c.requestId, url: c.url, method: c.method, token: c.tokenId ?? '', user_agent: c.userAgent ?? null,
    // Not known to Roost, written as Tinybird's documented empty values: no releases, no
    // resource tags, no CPU time from the engine (docs/decisions.md).
    release: '', resource_tags: [], cpu_time: 0,
  });
  if (c.error) {
    service.write(c.tenant, 'endpoint_errors', {
      start_datetime: start, workspace: c.workspace, workspace_id: c.workspaceId, pipe_id: c.pipeId, pipe_name: c.pipeName, parameters: c.parameters,
      error, status_code: c.status, request_id: c.requestId, token_name: c.tokenName,
      // Tinybird's names: the parameters as JSON text, the URL without the token.
      params: new JsonText(c.parameters), url: c.url, resource_tags: [],
    });
  }
}
