// A minimal user agent over fetch for the console's HTTP tests: a cookie jar per origin, manual
// redirects, and the headers a browser sends with a form post (Origin, Sec-Fetch-Site). It signs
// in through the real identity provider's pages (test/console/idp.ts) the way a person would.
export interface Reply {
  status: number;
  headers: Headers;
  text: string;
  url: string;
  /** The raw Set-Cookie lines of this response. */
  setCookies: string[];
}

export class Agent {
  private readonly jar = new Map<string, Map<string, string>>();

  cookies(origin: string): Map<string, string> {
    let m = this.jar.get(origin);
    if (!m) this.jar.set(origin, (m = new Map()));
    return m;
  }

  async request(method: 'GET' | 'POST', url: string, opts: { form?: Record<string, string>; headers?: Record<string, string>; origin?: string | null } = {}): Promise<Reply> {
    const u = new URL(url);
    const cookie = [...this.cookies(u.origin)].map(([k, v]) => `${k}=${v}`).join('; ');
    const headers: Record<string, string> = { ...(cookie ? { cookie } : {}), ...opts.headers };
    if (method === 'POST') {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      if (opts.origin !== null) headers.origin = opts.origin ?? u.origin;
      headers['sec-fetch-site'] ??= opts.origin === undefined || opts.origin === u.origin ? 'same-origin' : 'cross-site';
    }
    const res = await fetch(url, { method, headers, redirect: 'manual', ...(opts.form ? { body: new URLSearchParams(opts.form).toString() } : {}) });
    const setCookies = res.headers.getSetCookie();
    for (const line of setCookies) {
      const [pair, ...attrs] = line.split(';');
      const i = pair!.indexOf('=');
      const name = pair!.slice(0, i).trim();
      const value = pair!.slice(i + 1).trim();
      const expired = attrs.some((a) => /^\s*expires=Thu, 01 Jan 1970/i.test(a)) || value === '';
      if (expired) this.cookies(u.origin).delete(name);
      else this.cookies(u.origin).set(name, value);
    }
    return { status: res.status, headers: res.headers, text: await res.text(), url, setCookies };
  }

  get(url: string, headers?: Record<string, string>) {
    return this.request('GET', url, headers ? { headers } : {});
  }

  /** Follows redirects (GET) until a page answers; returns the last reply. */
  async follow(first: Reply, limit = 10): Promise<Reply> {
    let r = first;
    for (let i = 0; i < limit && r.status >= 300 && r.status < 400; i++) r = await this.get(new URL(r.headers.get('location')!, r.url).href);
    return r;
  }

  /** The value of a hidden or named input in an HTML page. */
  static input(html: string, name: string): string | undefined {
    const m = new RegExp(`<input[^>]*name="${name}"[^>]*value="([^"]*)"`).exec(html) ?? new RegExp(`<input[^>]*value="([^"]*)"[^>]*name="${name}"`).exec(html);
    return m?.[1]?.replace(/&amp;/g, '&').replace(/&quot;/g, '"');
  }

  /**
   * Signs in through the identity provider: console → IdP sign-in page → consent page → the
   * console's callback. Returns the callback's reply (the "signed in" page, or a refusal).
   */
  async ssoSignIn(consoleUrl: string, login: string, next = '/console/'): Promise<Reply> {
    let r = await this.get(`${consoleUrl}/console/auth/start?next=${encodeURIComponent(next)}`);
    if (r.status !== 303) throw new Error(`auth/start answered ${r.status}: ${r.text.slice(0, 300)}`);
    r = await this.follow(r); // the IdP's sign-in page
    for (let step = 0; step < 4; step++) {
      const action = /<form[^>]*action="([^"]+)"[^>]*method="post"/.exec(r.text)?.[1];
      if (!action) break;
      const prompt = Agent.input(r.text, 'prompt')!;
      const form: Record<string, string> = prompt === 'login' ? { prompt, login, password: 'any' } : { prompt };
      r = await this.request('POST', new URL(action, r.url).href, { form });
      while (r.status >= 300 && r.status < 400) {
        const next = new URL(r.headers.get('location')!, r.url).href;
        r = await this.get(next);
        if (next.startsWith(`${consoleUrl}/console/auth/callback`)) return r;
      }
    }
    throw new Error(`sign-in did not reach the callback: ${r.status} ${r.text.slice(0, 500)}`);
  }
}
