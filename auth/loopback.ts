/**
 * Loopback hosts: where plain http is accepted (an OIDC issuer, a SAML IdP's URL, Roost's own
 * public URL for cookies without `Secure`). One check for all of them.
 */
import net from 'node:net';

const LOOPBACK = new net.BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

/**
 * Whether a URL's `hostname` (IPv6 in brackets or not) is loopback: an IPv4 address in
 * 127.0.0.0/8, `::1`, or the name `localhost`. Only literals are read as addresses: a DNS name
 * starting with `127.` (`127.evil.com`, `127.0.0.1.nip.io`) is any host, and so is `localhost.`
 * (another spelling of the name, which a resolver may send to DNS).
 */
export function isLoopbackHost(hostname: string): boolean {
  const h = hostname.toLowerCase().replace(/^\[(.*)\]$/, '$1');
  if (h === 'localhost') return true;
  if (net.isIPv4(h)) return LOOPBACK.check(h, 'ipv4');
  if (net.isIPv6(h)) return LOOPBACK.check(h, 'ipv6');
  return false;
}

/** The host a URL reaches over plain http across the network (not loopback), if it does. */
export function plainHttpHost(url: URL): string | undefined {
  return url.protocol === 'http:' && !isLoopbackHost(url.hostname) ? url.hostname : undefined;
}
