/**
 * The address of the client a request came from. Without trusted proxies that is the peer of the
 * TCP connection, whatever headers say. With them (`--trusted-proxies`), a request whose peer is
 * one of them is read back through `X-Forwarded-For` from the right: each trusted address is a
 * proxy that appended the one before it, and the first address that is not trusted is the
 * client. Anything to its left was written by the client and is not believed.
 */
import net from 'node:net';
import type { Ctx } from './context.js';

/** A set of addresses and subnets (IPv4, IPv6). */
export interface TrustedProxies {
  readonly list: net.BlockList;
  /** As configured, for messages. */
  readonly spec: string[];
}

/**
 * Parses `10.0.0.1, 10.1.0.0/16, ::1, fd00::/8`. Returns the problems instead of throwing, so the
 * configuration can report them with the others.
 */
export function parseTrustedProxies(raw: string): { proxies?: TrustedProxies; problems: string[] } {
  const problems: string[] = [];
  const list = new net.BlockList();
  const spec: string[] = [];
  for (const part of raw.split(',').map((s) => s.trim()).filter(Boolean)) {
    const m = /^([^/]+)(?:\/(\d{1,3}))?$/.exec(part);
    const ip = m?.[1] ?? '';
    const family = net.isIP(ip);
    const bits = m?.[2] === undefined ? undefined : Number(m[2]);
    if (!m || !family || (bits !== undefined && bits > (family === 4 ? 32 : 128))) {
      problems.push(`"${part}" is not an IP address or a subnet (address/prefix length)`);
      continue;
    }
    const type = family === 4 ? 'ipv4' : 'ipv6';
    if (bits === undefined) list.addAddress(ip, type);
    else list.addSubnet(ip, bits, type);
    spec.push(part);
  }
  if (!problems.length && !spec.length) problems.push('name at least one address or subnet, or leave it unset');
  return { proxies: problems.length ? undefined : { list, spec }, problems };
}

/** `::ffff:10.0.0.1` (a dual-stack socket's IPv4 peer; any case) is `10.0.0.1`. */
export function unmappedAddress(addr: string): string {
  return addr.slice(0, 7).toLowerCase() === '::ffff:' && net.isIPv4(addr.slice(7)) ? addr.slice(7) : addr;
}

export function trusted(p: TrustedProxies, addr: string): boolean {
  const family = net.isIP(addr);
  return family !== 0 && p.list.check(addr, family === 4 ? 'ipv4' : 'ipv6');
}

/** An X-Forwarded-For element as an address: `1.2.3.4`, `1.2.3.4:567`, `::1`, `[::1]:567`; else ''. */
function forwardedAddress(s: string): string {
  const v = s.trim();
  if (net.isIP(v)) return unmappedAddress(v);
  const v4port = /^(\d{1,3}(?:\.\d{1,3}){3}):\d{1,5}$/.exec(v);
  if (v4port && net.isIPv4(v4port[1]!)) return v4port[1]!;
  const v6 = /^\[([0-9A-Fa-f:.]+)\](?::\d{1,5})?$/.exec(v);
  if (v6 && net.isIPv6(v6[1]!)) return unmappedAddress(v6[1]!);
  return '';
}

/** Who sent the request (see the module comment). Computed once per request. */
export function clientAddressOf(peer: string | undefined, forwardedFor: string | string[] | undefined, proxies: TrustedProxies | undefined): string {
  let current = unmappedAddress(peer ?? '');
  if (!proxies || !trusted(proxies, current) || forwardedFor === undefined) return current;
  const hops = (Array.isArray(forwardedFor) ? forwardedFor.join(',') : forwardedFor).split(',');
  for (let i = hops.length - 1; i >= 0; i--) {
    const addr = forwardedAddress(hops[i]!);
    // A hop that is not an address (`unknown`, a name, garbage): nothing to its left can be
    // believed, so the client is the last trusted hop.
    if (!addr) return current;
    current = addr;
    if (!trusted(proxies, addr)) return addr;
  }
  return current;
}

const cache = new WeakMap<Ctx, string>();
let warnedUntrusted = false;

/** The client address of a request, through the server's trusted proxies. */
export function clientIp(ctx: Ctx): string {
  let ip = cache.get(ctx);
  if (ip === undefined) {
    const forwarded = ctx.req.headers['x-forwarded-for'];
    ip = clientAddressOf(ctx.req.socket.remoteAddress, forwarded, ctx.proxies);
    cache.set(ctx, ip);
    if (forwarded !== undefined && !ctx.proxies && !warnedUntrusted) {
      // Once per process: a proxy in front that nobody named, or a client writing the header.
      warnedUntrusted = true;
      ctx.log.warn('a request carried X-Forwarded-For, which is ignored: no proxy is trusted. Behind a reverse proxy, every client counts as the proxy (audit records, the login rate limit)', { peer: ip, fix: 'set --trusted-proxies / ROOST_TRUSTED_PROXIES to the proxy\'s addresses' });
    }
  }
  return ip;
}
