// The console's configuration rules (cross-field, checked when the config is compiled) and the
// values derived from it at run time: whether the console is on, its origin, whether cookies must
// be Secure. The console is off unless SSO is configured, or `credbroker dev` turns on its dev login.
import { isLoopbackHost } from '../admin/listener.js';
import { issuerUrlProblem } from '../core/issuer-url.js';
import type { Problem } from '../core/problems.js';
import type { RawConfig } from '../config/schema.js';

export type ConsoleSettings = RawConfig['console'];
export type SsoSettings = NonNullable<ConsoleSettings['sso']>;

/** The origin (scheme://host[:port]) of console.url, or a problem. */
export function consoleOrigin(url: string): { origin: string } | { problem: string } {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return { problem: 'not a valid URL' };
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') return { problem: 'must be an https:// address' };
  if (u.protocol === 'http:' && !isLoopbackHost(u.hostname)) return { problem: 'must use https (plain http only on a loopback address): session cookies are Secure' };
  if (u.username || u.password || u.search || u.hash || url.includes('?') || url.includes('#')) return { problem: 'must be scheme://host[:port] only (no userinfo, query or fragment)' };
  if (u.pathname !== '/' && u.pathname !== '') return { problem: 'must have no path: the console is served at /console' };
  return { origin: u.origin };
}

export function consoleConfigProblems(raw: RawConfig): { problems: Problem[]; warnings: Problem[] } {
  const problems: Problem[] = [];
  const warnings: Problem[] = [];
  const c = raw.console;
  if (!c.sso) return { problems, warnings };
  if (!raw.admin.enabled) problems.push({ path: 'console.sso', message: 'the console is served on the admin listener: set admin.enabled: true' });
  if (c.url === undefined) problems.push({ path: 'console.url', message: 'required with console.sso: the address people open (the SSO redirect URI is <url>/console/auth/callback)' });
  else {
    const o = consoleOrigin(c.url);
    if ('problem' in o) problems.push({ path: 'console.url', message: o.problem });
  }
  const issuer = issuerUrlProblem(c.sso.issuer, c.sso.allow_insecure_http);
  if (issuer) problems.push({ path: 'console.sso.issuer', message: issuer });
  if ((c.sso.client_secret_file === undefined) === (c.sso.client_secret_env === undefined)) {
    problems.push({ path: 'console.sso', message: 'give the client secret in exactly one of client_secret_file or client_secret_env' });
  }
  if (!c.sso.scopes.includes('openid')) problems.push({ path: 'console.sso.scopes', message: 'must include openid' });
  const nobody = [c.viewers, c.operators].every((a) => a.groups.length === 0 && a.emails.length === 0);
  if (nobody) problems.push({ path: 'console.operators', message: 'nobody could sign in: name groups or e-mail addresses under console.viewers or console.operators' });
  if (c.sso.allow_insecure_http) warnings.push({ path: 'console.sso.allow_insecure_http', message: 'http identity provider allowed: for local testing only' });
  return { problems, warnings };
}

/** Session cookies are Secure, except on a loopback address in dev mode (plain http there). */
export function secureCookies(dev: boolean, adminHost: string): boolean {
  return !(dev && isLoopbackHost(adminHost));
}
