/**
 * The IdP hosts the operator allows (`--idp-hosts`, `ROOST_IDP_HOSTS`): where the server's own
 * requests for OIDC connections (discovery, JWKS, token endpoint, UserInfo) may go. Tenant admins
 * write issuers; without this list a connection could make Roost reach any https host of the
 * operator's network (and plain http on its loopback).
 *
 * Entries, comma-separated, case-insensitive:
 * - `idp.example.com` — that host name exactly; `*.example.com` — any name ending in
 *   `.example.com` (subdomains at any depth, not `example.com` itself);
 * - `10.0.0.5`, `[fd00::5]` — an IP address, exactly as URLs write it (no wildcard);
 * - `:port` after any of them — that port; without one, the URL's default port (443 for https,
 *   80 for http) only;
 * - `*` alone — any host, as when unset, said on purpose (no warning at start).
 * Host names are ASCII (an internationalized name in its `xn--` form, as URLs carry it), without a
 * trailing dot; a URL whose host ends in a dot matches nothing. Plain http stays limited to
 * loopback (127.0.0.0/8, ::1, localhost), and with a list only to loopback hosts it names.
 */
import net from 'node:net';
import { isLoopbackHost } from '../loopback.js';

export interface IdpHostEntry {
  /** Lower case; bracketed for IPv6 (`[::1]`), as `URL.hostname` has it. */
  readonly host: string;
  /** `*.host`: names ending in `.host`. */
  readonly wildcard: boolean;
  /** Only this port (digits); undefined: the URL's default port only. */
  readonly port: string | undefined;
}

export interface IdpHosts {
  /** `*`: any host (as when unset). */
  readonly any: boolean;
  readonly entries: readonly IdpHostEntry[];
  /** As configured, for messages and the start log. */
  readonly spec: readonly string[];
}

/** The setting's names, as messages say them. */
export const IDP_HOSTS_SETTING = '--idp-hosts / ROOST_IDP_HOSTS';

const DNS_NAME = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/;

function entryProblem(part: string): string | IdpHostEntry {
  const item = part.toLowerCase();
  if (/[^\x21-\x7e]/.test(item)) return `"${part}": write host names in ASCII (an internationalized name in its xn-- form)`;
  const m = /^(\*\.)?(\[[0-9a-f:.]+\]|[^:[\]]+)(?::(\d{1,5}))?$/.exec(item);
  if (!m) return `"${part}" is not a host name, an IP address or *.domain, with an optional :port`;
  const [, star, host, port] = m as unknown as [string, string | undefined, string, string | undefined];
  if (port !== undefined && (Number(port) < 1 || Number(port) > 65535 || port.startsWith('0'))) return `"${part}": the port must be 1-65535`;
  if (host.endsWith('.')) return `"${part}": write the host name without a trailing dot`;
  let parsed: string;
  try { parsed = new URL(`https://${host}/`).hostname; } catch { return `"${part}" is not a host name or an IP address`; }
  const ip = host.startsWith('[') || net.isIPv4(host);
  // A host that URLs would write differently (010.1 is 8.0.0.1 to a URL, [::0:1] is [::1]) is
  // refused rather than guessed: the entry must be what the issuer URLs will carry.
  if (parsed !== host || (!ip && !DNS_NAME.test(host))) {
    return `"${part}" is not a host name (letters, digits, hyphens and dots) or an IP address as URLs write it${parsed !== host ? ` (a URL reads it as ${parsed})` : ''}`;
  }
  if (star && ip) return `"${part}": a wildcard applies to domain names, not IP addresses`;
  return { host, wildcard: !!star, port };
}

/**
 * Parses `idp.acme.com, *.okta.com, 10.0.0.5:8443`. Returns the problems instead of throwing,
 * so the configuration reports them with the others.
 */
export function parseIdpHosts(raw: string): { hosts?: IdpHosts; problems: string[] } {
  const problems: string[] = [];
  const entries: IdpHostEntry[] = [];
  const parts = raw.split(',').map((s) => s.trim()).filter(Boolean);
  const any = parts.includes('*');
  if (any && parts.length > 1) problems.push('"*" allows any host: list nothing else with it');
  for (const part of any ? [] : parts) {
    const e = entryProblem(part);
    if (typeof e === 'string') problems.push(e);
    else entries.push(e);
  }
  if (!problems.length && !any && !entries.length) problems.push('name at least one host (or * for any), or leave it unset');
  return { hosts: problems.length ? undefined : { any, entries, spec: parts }, problems };
}

/** `host` or `host:port` as an entry would name it (the port only when not the scheme's default). */
export function hostLabel(u: URL): string {
  return u.port ? `${u.hostname}:${u.port}` : u.hostname;
}

function entryMatches(e: IdpHostEntry, u: URL): boolean {
  const host = u.hostname;
  if (e.wildcard ? !host.endsWith(`.${e.host}`) : host !== e.host) return false;
  if (e.port === undefined) return u.port === '';
  return (u.port || (u.protocol === 'https:' ? '443' : '80')) === e.port;
}

/**
 * Why the server may not send a request to `u`, or undefined when it may. Undefined `hosts`
 * (the setting unset) allows any https host, like `*`.
 */
export function idpUrlRefusal(hosts: IdpHosts | undefined, u: URL): string | undefined {
  if (u.protocol !== 'https:' && u.protocol !== 'http:') return `${u.protocol} is not https`;
  if (u.protocol === 'http:' && !isLoopbackHost(u.hostname)) return 'plain http is accepted on loopback only; use https';
  if (!hosts || hosts.any) return undefined;
  if (hosts.entries.some((e) => entryMatches(e, u))) return undefined;
  return `host ${hostLabel(u)} is not among the IdP hosts this server's operator allows (${IDP_HOSTS_SETTING})`;
}
