/**
 * Shared by the identity tests that run the real server: the operator token, JSON request
 * bodies, and the audit records the server logged (waiting for one to be written).
 */
import { expect } from 'vitest';
import type { RunningServer } from './server.js';

export type AuditRecord = Record<string, any>;

/** A JSON request body with its Content-Type, to spread into `call`'s init. */
export const json = (body: unknown) => ({ headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });

/** Helpers bound to the server `srv()` answers (read at each call: suites start it in beforeAll). */
export function serverAudit(srv: () => RunningServer) {
  /** The operator's token. */
  const op = () => srv().operatorToken;
  /** The audit records logged so far that `pred` accepts. */
  const audits = (pred: (a: AuditRecord) => boolean): AuditRecord[] => srv().logs.filter((l) => l.msg === 'audit' && pred(l));
  /** Waits up to 2 s for a record `pred` accepts; answers those logged then (perhaps none). */
  async function waitAudits(pred: (a: AuditRecord) => boolean): Promise<AuditRecord[]> {
    for (let i = 0; i < 100 && audits(pred).length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    return audits(pred);
  }
  /** Waits for a record `pred` accepts, expects one, and answers the first or the last of them. */
  async function waitAudit(pred: (a: AuditRecord) => boolean, which: 'first' | 'last' = 'last'): Promise<AuditRecord> {
    const got = await waitAudits(pred);
    expect(got.length).toBeGreaterThan(0);
    return which === 'first' ? got[0]! : got[got.length - 1]!;
  }
  return { op, audits, waitAudits, waitAudit };
}
