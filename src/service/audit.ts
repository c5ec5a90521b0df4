/**
 * Audit records: every auth decision that matters (logins, denials, token and
 * admin changes) goes to the tenant's `roost.audit_log` and to the JSON log.
 * Events with no tenant (e.g. an unknown credential) are in the JSON log only (stdout, `msg:
 * "audit"`): no tenant's cell is theirs. `<data>/audit/operator.log` holds the operator's own
 * actions (tenants/operator-audit.ts), fsynced; refusals of unknown credentials are not written
 * there (a flood of bad tokens would be a flood of fsyncs).
 */
import { chTime } from './time.js';
import type { ServiceLog } from './service-log.js';
import type { Logger } from '../log/logger.js';

export interface AuditEntry {
  event: string;
  outcome: 'success' | 'failure' | 'denied';
  tenant?: string;
  workspace?: string;
  /**
   * The id of the workspace the action was for, when the caller knows it (the request's
   * workspace as authenticated or authorized): the row belongs to it even when the workspace was
   * renamed, and another one given its name, before the record was written. Without it the name
   * is resolved when the row is queued (a name only: whichever workspace holds it then).
   */
  workspaceId?: string;
  reason?: string;
  actor?: string;
  credential?: string;
  connection?: string;
  resource?: string;
  requestId?: string;
  ip?: string;
  details?: Record<string, unknown>;
}

export type Auditor = (e: AuditEntry) => void;

export function createAuditor(service: ServiceLog, log: Logger, onEvent?: (e: AuditEntry) => void, ipOf?: (requestId: string) => string | undefined): Auditor {
  return (entry) => {
    // A record of a request names its client's address (only logins did: a person's mapping,
    // connection and token changes had none).
    const ip = entry.ip ?? (entry.requestId ? ipOf?.(entry.requestId) : undefined);
    const e = ip && !entry.ip ? { ...entry, ip } : entry;
    onEvent?.(e);
    log.info('audit', { ...e });
    if (!e.tenant) return;
    service.write(e.tenant, 'audit_log', {
      timestamp: chTime(),
      tenant: e.tenant,
      workspace: e.workspace ?? '',
      ...(e.workspaceId ? { workspace_id: e.workspaceId } : {}),
      event: e.event,
      outcome: e.outcome,
      reason: e.reason ?? '',
      actor: e.actor ?? '',
      credential: e.credential ?? '',
      connection: e.connection ?? '',
      resource: e.resource ?? '',
      request_id: e.requestId ?? '',
      ip: e.ip ?? '',
      details: e.details ? JSON.stringify(e.details) : '',
    });
  };
}
