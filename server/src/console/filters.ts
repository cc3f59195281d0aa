// The decisions page's filters, to and from the URL's query string: the same filters always give
// the same URL (fixed parameter order), so a link pasted into a ticket opens the same search.
import { parseDuration } from '../cli/ops.js';
import type { AuditSearch } from '../ops/types.js';

export const EVENT_KINDS = ['exchange', 'admin', 'rotation', 'console', 'all'] as const;
export type EventKind = (typeof EVENT_KINDS)[number];
export const PAGE_SIZES = [25, 50, 100, 200] as const;

export interface DecisionFilters {
  outcome: 'allow' | 'deny' | 'error' | undefined;
  role: string | undefined;
  issuer: string | undefined;
  /** `name=value` pairs; `*` in a value matches any run of characters. */
  claims: Array<{ name: string; value: string }>;
  /** As typed: a duration back from now (`24h`) or an ISO time. */
  since: string | undefined;
  until: string | undefined;
  event: EventKind;
  text: string | undefined;
  before: number | undefined;
  after: number | undefined;
  size: number;
}

const CLAIM_NAME = /^[A-Za-z0-9_.:/@-]{1,128}$/;
const one = (v: unknown): string | undefined => {
  const s = Array.isArray(v) ? v[0] : v;
  return typeof s === 'string' && s.trim() !== '' ? s.trim().slice(0, 500) : undefined;
};
const many = (v: unknown): string[] => (Array.isArray(v) ? v : v === undefined ? [] : [v]).filter((x): x is string => typeof x === 'string');
const seq = (v: unknown): number | undefined => {
  const s = one(v);
  return s !== undefined && /^\d{1,15}$/.test(s) ? Number(s) : undefined;
};

/** Parses the query; what does not parse is reported, never silently widened into "everything". */
export function parseFilters(query: Record<string, unknown>): { filters: DecisionFilters; problems: string[] } {
  const problems: string[] = [];
  const outcome = one(query.outcome);
  const claims: DecisionFilters['claims'] = [];
  for (const c of many(query.claim).slice(0, 10)) {
    if (c.trim() === '') continue;
    const i = c.indexOf('=');
    const name = i > 0 ? c.slice(0, i).trim() : '';
    if (!CLAIM_NAME.test(name)) problems.push(`claim filter "${c.slice(0, 80)}": write name=value (the name: letters, digits, _ . : / @ -)`);
    else claims.push({ name, value: c.slice(i + 1).trim().slice(0, 500) });
  }
  const event = (one(query.event) ?? 'exchange') as EventKind;
  const size = Number(one(query.size) ?? 50);
  const filters: DecisionFilters = {
    outcome: outcome === 'allow' || outcome === 'deny' || outcome === 'error' ? outcome : undefined,
    role: one(query.role),
    issuer: one(query.issuer),
    claims,
    since: one(query.since),
    until: one(query.until),
    event: (EVENT_KINDS as readonly string[]).includes(event) ? event : 'exchange',
    text: one(query.q),
    before: seq(query.before),
    after: seq(query.after),
    size: (PAGE_SIZES as readonly number[]).includes(size) ? size : 50,
  };
  if (outcome !== undefined && filters.outcome === undefined) problems.push(`outcome "${outcome}": one of allow, deny, error`);
  for (const [key, v] of [['since', filters.since], ['until', filters.until]] as const) {
    if (v !== undefined && timeOf(v, new Date()) === undefined) problems.push(`${key} "${v}": a duration back from now (15m, 24h, 7d) or a time (2026-01-31T12:00:00Z)`);
  }
  return { filters, problems };
}

export function timeOf(v: string, now: Date): Date | undefined {
  const ago = parseDuration(v);
  const d = ago !== undefined ? new Date(now.getTime() - ago * 1000) : new Date(v);
  return Number.isNaN(d.getTime()) ? undefined : d;
}

/** The query string for these filters (page cursor included unless `withoutPage`). */
export function filtersQuery(f: DecisionFilters, opts: { withoutPage?: boolean; page?: { before?: number; after?: number } } = {}): string {
  const q = new URLSearchParams();
  if (f.outcome) q.set('outcome', f.outcome);
  if (f.role) q.set('role', f.role);
  if (f.issuer) q.set('issuer', f.issuer);
  for (const c of f.claims) q.append('claim', `${c.name}=${c.value}`);
  if (f.since) q.set('since', f.since);
  if (f.until) q.set('until', f.until);
  if (f.event !== 'exchange') q.set('event', f.event);
  if (f.text) q.set('q', f.text);
  if (f.size !== 50) q.set('size', String(f.size));
  const page = opts.page ?? (opts.withoutPage ? {} : { before: f.before, after: f.after });
  if (page.before !== undefined) q.set('before', String(page.before));
  else if (page.after !== undefined) q.set('after', String(page.after));
  return q.toString();
}

/** The store search for these filters. */
export function toSearch(f: DecisionFilters, now: Date): AuditSearch {
  const since = f.since !== undefined ? timeOf(f.since, now) : undefined;
  const until = f.until !== undefined ? timeOf(f.until, now) : undefined;
  const event = f.event === 'exchange' ? { event: 'exchange' } : f.event === 'all' ? {} : { eventPrefix: `${f.event}.` };
  return {
    ...event,
    ...(f.outcome ? { decision: f.outcome } : {}),
    ...(f.role ? { role: f.role } : {}),
    ...(f.issuer ? { issuer: f.issuer } : {}),
    ...(f.claims.length ? { claims: f.claims } : {}),
    ...(since ? { since } : {}),
    ...(until ? { until } : {}),
    ...(f.text ? { text: f.text } : {}),
    ...(f.before !== undefined ? { beforeSeq: f.before } : f.after !== undefined ? { afterSeq: f.after } : {}),
    limit: f.size,
  };
}
