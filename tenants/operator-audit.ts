/**
 * The operator's audit trail: tenant-level administration (create, change,
 * delete, backup, restore) as a JSON log line (`msg: "audit"`) and appended
 * to `<data>/audit/operator.log`, one JSON object a line, fsynced. The file
 * outlives the tenant it speaks of (a deleted tenant's own audit_log is gone
 * with its cell).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { App } from '../src/app.js';
import type { AuditEntry } from '../src/service/audit.js';

export function operatorLogPath(dataDir: string): string {
  return path.join(dataDir, 'audit', 'operator.log');
}

/**
 * Records an operator action. `subject` is the tenant acted on; it is not the
 * entry's `tenant` (which would also write into that tenant's cell) so that the
 * record exists even when the tenant is being deleted.
 */
export function auditOperator(app: App, subject: string, e: Omit<AuditEntry, 'tenant' | 'outcome'> & { outcome?: AuditEntry['outcome'] }): void {
  const entry: AuditEntry = { outcome: 'success', ...e, resource: e.resource ?? `tenant:${subject}` };
  app.audit(entry);
  const file = operatorLogPath(app.config.dataDir);
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    const fd = fs.openSync(file, 'a', 0o600);
    try {
      fs.writeSync(fd, JSON.stringify({ time: new Date().toISOString(), subject_tenant: subject, ...entry }) + '\n');
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  } catch (err) {
    app.log.error('operator audit file not written', { file, err });
  }
}
