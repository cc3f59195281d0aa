// Console sessions, held in this process's memory: the cookie carries a random id (the map is
// keyed by its SHA-256), a session ends after an idle time and after a maximum age, and logout
// deletes it — a copied cookie is then worth nothing. A restart signs everyone out. Each session
// has its own CSRF token, required with every state-changing request.
//
// Also the short-lived state of a sign-in in progress (OIDC state, nonce and PKCE verifier),
// keyed by a cookie of its own.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Person } from './access.js';

export interface Session {
  person: Person;
  csrf: string;
  createdAt: number;
  lastSeenAt: number;
}

export interface PendingLogin {
  state: string;
  nonce: string;
  verifier: string;
  returnTo: string;
  createdAt: number;
}

const MAX_SESSIONS = 10_000;
const MAX_PENDING = 1_000;
const PENDING_MS = 10 * 60_000;

export const randomToken = (): string => randomBytes(32).toString('base64url');
const keyOf = (id: string): string => createHash('sha256').update(id).digest('hex');

/** Constant-time comparison of two tokens (false for different lengths). */
export function sameToken(a: string | undefined, b: string): boolean {
  if (typeof a !== 'string') return false;
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export class SessionStore {
  private readonly sessions = new Map<string, Session>();
  private readonly pending = new Map<string, PendingLogin>();

  constructor(private readonly now: () => number) {}

  /** A new session; returns the id for the cookie (only its hash is kept). */
  create(person: Person): { id: string; session: Session } {
    this.sweep();
    if (this.sessions.size >= MAX_SESSIONS) {
      // Oldest first: a flood of sign-ins cannot grow memory without bound.
      const oldest = [...this.sessions].sort((a, b) => a[1].lastSeenAt - b[1].lastSeenAt)[0];
      if (oldest) this.sessions.delete(oldest[0]);
    }
    const id = randomToken();
    const t = this.now();
    const session: Session = { person, csrf: randomToken(), createdAt: t, lastSeenAt: t };
    this.sessions.set(keyOf(id), session);
    return { id, session };
  }

  /** The live session for a cookie value, touched; undefined when unknown or expired. */
  get(id: string | undefined, limits: { idleMs: number; maxMs: number }): Session | undefined {
    if (!id) return undefined;
    const key = keyOf(id);
    const s = this.sessions.get(key);
    if (!s) return undefined;
    const t = this.now();
    if (t - s.lastSeenAt > limits.idleMs || t - s.createdAt > limits.maxMs) {
      this.sessions.delete(key);
      return undefined;
    }
    s.lastSeenAt = t;
    return s;
  }

  delete(id: string | undefined): void {
    if (id) this.sessions.delete(keyOf(id));
  }

  get size(): number {
    return this.sessions.size;
  }

  startLogin(returnTo: string, secrets: Omit<PendingLogin, 'returnTo' | 'createdAt'>): string {
    const t = this.now();
    for (const [k, p] of this.pending) if (t - p.createdAt > PENDING_MS) this.pending.delete(k);
    if (this.pending.size >= MAX_PENDING) this.pending.delete(this.pending.keys().next().value!);
    const id = randomToken();
    this.pending.set(keyOf(id), { ...secrets, returnTo, createdAt: t });
    return id;
  }

  /** The sign-in in progress for this cookie, consumed (a callback is accepted once). */
  takeLogin(id: string | undefined): PendingLogin | undefined {
    if (!id) return undefined;
    const key = keyOf(id);
    const p = this.pending.get(key);
    this.pending.delete(key);
    return p && this.now() - p.createdAt <= PENDING_MS ? p : undefined;
  }

  private sweep(): void {
    if (this.sessions.size < MAX_SESSIONS / 2) return;
    const t = this.now();
    for (const [k, s] of this.sessions) if (t - s.lastSeenAt > 24 * 3600_000) this.sessions.delete(k);
  }
}
