/**
 * A minimal browser for driving OIDC logins over real HTTP: a cookie jar per
 * origin, manual redirects, and the development IdP's account picker.
 */
export interface Step { status: number; headers: Headers; text: string; url: string }

export class Browser {
  jar = new Map<string, Map<string, string>>();

  cookies(origin: string): Map<string, string> {
    let m = this.jar.get(origin);
    if (!m) { m = new Map(); this.jar.set(origin, m); }
    return m;
  }

  cookie(url: string, name: string): string | undefined {
    return this.cookies(new URL(url).origin).get(name);
  }

  async fetch(url: string, init: RequestInit = {}): Promise<Step> {
    const u = new URL(url);
    const headers = new Headers(init.headers);
    const c = [...this.cookies(u.origin)].map(([k, v]) => `${k}=${v}`).join('; ');
    if (c) headers.set('Cookie', c);
    const res = await fetch(url, { ...init, headers, redirect: 'manual' });
    for (const sc of res.headers.getSetCookie()) {
      const [pair, ...attrs] = sc.split(';');
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq).trim();
      const value = pair!.slice(eq + 1).trim();
      const expired = attrs.some((a) => /^\s*max-age=0\s*$/i.test(a) || /^\s*expires=thu, 01 jan 1970/i.test(a));
      if (expired || value === '') this.cookies(u.origin).delete(name);
      else this.cookies(u.origin).set(name, value);
    }
    return { status: res.status, headers: res.headers, text: await res.text(), url };
  }

  /**
   * Follows redirects from `url` through the IdP (picking `account` on its
   * login page) until the next hop would leave the IdP for `stopOrigin`;
   * answers that URL (the callback) without requesting it.
   */
  async toCallback(url: string, account: string, stopOrigin: string): Promise<string> {
    let next = url;
    for (let hops = 0; hops < 20; hops++) {
      if (new URL(next).origin === stopOrigin && hops > 0) return next;
      const r = await this.fetch(next);
      if (r.status >= 300 && r.status < 400) { next = new URL(r.headers.get('location')!, next).href; continue; }
      const form = /<form method="post" action="([^"]+)"><input type="hidden" name="account" value="([^"]+)">/g;
      let m: RegExpExecArray | null;
      let action: string | undefined;
      while ((m = form.exec(r.text))) if (m[2] === account) action = m[1];
      if (r.status === 200 && action) {
        const p = await this.fetch(new URL(action, next).href, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ account }).toString() });
        if (p.status < 300 || p.status >= 400) throw new Error(`IdP login answered ${p.status}: ${p.text.slice(0, 300)}`);
        next = new URL(p.headers.get('location')!, next).href;
        continue;
      }
      throw new Error(`unexpected ${r.status} at ${next}: ${r.text.slice(0, 300)}`);
    }
    throw new Error('too many redirects');
  }

  /** Full login: `/auth/login?...` → IdP → callback; answers the callback's response. */
  async login(roost: string, query: string, account: string): Promise<Step> {
    const start = await this.fetch(`${roost}/auth/login?${query}`);
    if (start.status !== 302) throw new Error(`/auth/login answered ${start.status}: ${start.text}`);
    const cb = await this.toCallback(start.headers.get('location')!, account, new URL(roost).origin);
    return this.fetch(cb);
  }
}

/** An access token from an IdP's token endpoint by the client-credentials grant (scope `api`). */
export async function clientCredentialsToken(issuer: string, clientId: string, clientSecret: string, resource: string): Promise<string> {
  const request = () => fetch(`${issuer}/token`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', Authorization: `Basic ${Buffer.from(`${clientId}:${clientSecret}`).toString('base64')}` },
    body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'api', resource }).toString(),
  });
  let r: Response;
  try {
    r = await request();
  } catch (e) {
    // Tests restart an IdP on the same port: fetch may still hold a kept-alive socket to
    // the old one, closed under it ("other side closed"). A new request opens a new one.
    if ((e as { cause?: { code?: string } }).cause?.code !== 'UND_ERR_SOCKET') throw e;
    r = await request();
  }
  const body = (await r.json()) as { access_token?: string };
  if (!body.access_token) throw new Error(`no access token from ${issuer}: ${JSON.stringify(body)}`);
  return body.access_token;
}
