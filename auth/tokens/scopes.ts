/**
 * Tinybird token scopes: parsing and validation of `TYPE[:resource[:filter]]`
 * strings, and the `{type, resource, filter}` shape Tinybird's API answers with.
 */
import { RoostError } from '../../src/errors.js';

/** Scope types without a resource. */
const BARE = new Set(['ADMIN', 'TOKENS', 'DATASOURCES:CREATE', 'PIPES:CREATE']);
/** Scope types that name a resource (`*` means every one). */
const WITH_RESOURCE = new Set(['DATASOURCES:APPEND', 'DATASOURCES:READ', 'DATASOURCES:DROP', 'PIPES:READ', 'PIPES:DROP']);
const RESOURCE = /^(?:\*|[A-Za-z_][A-Za-z0-9_.]{0,127})$/;

export interface ScopeView { type: string; resource?: string; filter?: string }

/** Splits a scope string; the filter (only for `DATASOURCES:READ`) may hold colons. */
export function splitScope(s: string): ScopeView {
  const parts = s.split(':');
  if (parts.length === 1) return { type: s };
  const two = `${parts[0]}:${parts[1]}`;
  if (parts.length === 2) return BARE.has(two) ? { type: two } : { type: parts[0]!, resource: parts[1] };
  const filter = parts.slice(3).join(':');
  return filter ? { type: two, resource: parts[2], filter } : { type: two, resource: parts[2] };
}

/** Validates one scope string from a request; answers it normalised. */
export function parseScope(raw: string): string {
  const s = raw.trim();
  if (BARE.has(s)) return s;
  const v = splitScope(s);
  if (!WITH_RESOURCE.has(v.type) || !v.resource) {
    throw new RoostError('INVALID_PARAMETER', `unknown scope "${raw}"; known: ADMIN, TOKENS, DATASOURCES:CREATE, DATASOURCES:APPEND:<ds>, DATASOURCES:READ:<ds>[:<filter>], DATASOURCES:DROP:<ds>, PIPES:CREATE, PIPES:READ:<pipe>, PIPES:DROP:<pipe>`);
  }
  if (!RESOURCE.test(v.resource)) throw new RoostError('INVALID_PARAMETER', `scope "${raw}": "${v.resource}" is not a data source or pipe name`);
  if (v.filter !== undefined && v.type !== 'DATASOURCES:READ') throw new RoostError('INVALID_PARAMETER', `scope "${raw}": only DATASOURCES:READ takes a row filter`);
  return v.filter ? `${v.type}:${v.resource}:${v.filter}` : `${v.type}:${v.resource}`;
}

export function scopeView(s: string): ScopeView {
  const v = splitScope(s);
  return { type: v.type, ...(v.resource !== undefined ? { resource: v.resource } : {}), filter: v.filter ?? '' };
}
