// HTTP plumbing of the console: security headers, cookies, the host and origin checks that keep
// other sites (and DNS rebinding) out, and rendering a page.
import type { Request, Response } from 'express';
import type { VNode } from 'preact';
import { renderToString } from 'preact-render-to-string';
import { isLoopbackHost } from '../admin/listener.js';

/**
 * Scripts and styles from this origin only (no inline code, no eval, nobody else's origin),
 * forms post only here, and no page may frame this one.
 */
export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "font-src 'self'",
  "connect-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

export function securityHeaders(res: Response): void {
  res.set({
    'Content-Security-Policy': CONSOLE_CSP,
    'X-Frame-Options': 'DENY',
    'X-Content-Type-Options': 'nosniff',
    // same-origin, not no-referrer: with no-referrer a browser sends "Origin: null" on form posts, and
    // the origin check could not tell the console's own forms from anyone else's.
    'Referrer-Policy': 'same-origin',
    'Cross-Origin-Opener-Policy': 'same-origin',
    'Cross-Origin-Resource-Policy': 'same-origin',
    'Permissions-Policy': 'camera=(), microphone=(), geolocation=(), payment=(), usb=()',
    'Cache-Control': 'no-store',
  });
}

export function render(res: Response, status: number, page: VNode): void {
  res.status(status).type('html').send(`<!doctype html>${renderToString(page)}`);
}

export function readCookie(req: Request, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) {
      const v = part.slice(i + 1).trim();
      return /^[A-Za-z0-9_-]{1,200}$/.test(v) ? v : undefined;
    }
  }
  return undefined;
}

export interface CookieNames {
  session: string;
  login: string;
  prelogin: string;
  secure: boolean;
  path: string;
}

/** `__Host-` names (Secure, Path=/, no Domain: no other host or path can set them) unless on plain http in dev mode. */
export const cookieNames = (secure: boolean): CookieNames =>
  secure
    ? { session: '__Host-credbroker-console', login: '__Host-credbroker-login', prelogin: '__Host-credbroker-prelogin', secure, path: '/' }
    : { session: 'credbroker-console', login: 'credbroker-login', prelogin: 'credbroker-prelogin', secure, path: '/console' };

export function setCookie(res: Response, names: CookieNames, name: string, value: string, opts: { maxAgeMs?: number; sameSite: 'strict' | 'lax' }): void {
  res.cookie(name, value, {
    httpOnly: true,
    secure: names.secure,
    sameSite: opts.sameSite,
    path: names.path,
    ...(opts.maxAgeMs !== undefined ? { maxAge: opts.maxAgeMs } : {}),
  });
}

export function clearCookie(res: Response, names: CookieNames, name: string, sameSite: 'strict' | 'lax' = 'strict'): void {
  res.clearCookie(name, { httpOnly: true, secure: names.secure, sameSite, path: names.path });
}

/** The Host header's host name (IPv6 without brackets), or undefined when malformed. */
export function hostName(host: string | undefined): string | undefined {
  if (!host) return undefined;
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(?::\d{1,5})?$/.exec(host);
  return m ? m[1]!.replace(/^\[(.*)\]$/, '$1').toLowerCase() : undefined;
}

/**
 * The console answers only to its own name: the host of console.url, or a loopback address (an
 * SSH tunnel, or a proxy that forwards to 127.0.0.1). A page elsewhere whose name resolves to
 * this listener (DNS rebinding) is refused.
 */
export function hostAllowed(host: string | undefined, consoleUrl: string | undefined): boolean {
  const name = hostName(host);
  if (name === undefined) return false;
  if (isLoopbackHost(name)) return true;
  if (consoleUrl === undefined) return false;
  try {
    return new URL(consoleUrl).host.toLowerCase() === host!.toLowerCase();
  } catch {
    return false;
  }
}

/** The path to go to after sign-in: a console path, never another site (`//evil`, `/\evil`). */
export function safeNext(v: unknown): string {
  const s = typeof v === 'string' ? v : '';
  return /^\/console(\/[^\\\s]*)?$/.test(s) && !s.startsWith('//') && s.length <= 2000 ? s : '/console/';
}
