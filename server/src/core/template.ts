// Templates for session names, source identities and tag values: literal text with `{claim}`
// placeholders (the claim name is taken literally, so `{oidc.circleci.com/project-id}` works),
// built-ins `{@issuer}`, `{@provider}`, `{@role}`, `{@token_hash}`, and one filter:
// `{claim|unbrace}` drops one pair of surrounding braces (Bitbucket's `{uuid}` ids, whose braces
// AWS refuses in tag values).

export const BUILTINS = ['issuer', 'provider', 'role', 'token_hash'] as const;
export type Builtin = (typeof BUILTINS)[number];

export const FILTERS = ['unbrace'] as const;
export type Filter = (typeof FILTERS)[number];

export type TemplatePart = { literal: string } | { claim: string; filter?: Filter } | { builtin: Builtin };

export interface Template {
  source: string;
  parts: TemplatePart[];
  /** Claim names the template reads (for audit "claims the policy used" and lint). */
  claims: string[];
}

export interface TemplateContext {
  claims: Readonly<Record<string, unknown>>;
  issuer: string;
  provider: string;
  role: string;
  tokenHash: string;
}

/** Parses a template; returns an error message instead of throwing. */
export function parseTemplate(source: string): Template | { error: string } {
  const parts: TemplatePart[] = [];
  const claims: string[] = [];
  let i = 0;
  while (i < source.length) {
    const open = source.indexOf('{', i);
    const close = source.indexOf('}', i);
    if (close !== -1 && (open === -1 || close < open)) return { error: `unmatched "}" at ${close}` };
    if (open === -1) {
      parts.push({ literal: source.slice(i) });
      break;
    }
    if (open > i) parts.push({ literal: source.slice(i, open) });
    const end = source.indexOf('}', open);
    if (end === -1) return { error: `unclosed "{" at ${open}` };
    const name = source.slice(open + 1, end);
    if (name.length === 0) return { error: `empty placeholder at ${open}` };
    if (name.includes('{')) return { error: `nested "{" at ${open}` };
    if (name.startsWith('@')) {
      const builtin = name.slice(1);
      if (!(BUILTINS as readonly string[]).includes(builtin)) {
        return { error: `unknown built-in "{${name}}" (known: ${BUILTINS.map((b) => `{@${b}}`).join(', ')})` };
      }
      parts.push({ builtin: builtin as Builtin });
    } else {
      const bar = name.lastIndexOf('|');
      const filter = bar === -1 ? undefined : name.slice(bar + 1);
      const claim = bar === -1 ? name : name.slice(0, bar);
      if (filter !== undefined && !(FILTERS as readonly string[]).includes(filter)) {
        return { error: `unknown filter "|${filter}" at ${open} (known: ${FILTERS.map((f) => `|${f}`).join(', ')})` };
      }
      if (claim.length === 0) return { error: `empty placeholder at ${open}` };
      parts.push(filter === undefined ? { claim } : { claim, filter: filter as Filter });
      claims.push(claim);
    }
    i = end + 1;
  }
  return { source, parts, claims };
}

/** Claim values become text: strings as they are, numbers/booleans printed, arrays joined, absent → "". */
export function claimText(value: unknown): string {
  if (value === undefined || value === null) return '';
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (Array.isArray(value)) return value.map(claimText).join(',');
  return JSON.stringify(value) ?? '';
}

export function renderTemplate(t: Template, ctx: TemplateContext): string {
  let out = '';
  for (const part of t.parts) {
    if ('literal' in part) out += part.literal;
    else if ('claim' in part) {
      const text = claimText(Object.hasOwn(ctx.claims, part.claim) ? ctx.claims[part.claim] : undefined);
      out += part.filter === 'unbrace' ? unbrace(text) : text;
    }
    else if (part.builtin === 'token_hash') out += ctx.tokenHash.slice(0, 12);
    else out += ctx[part.builtin];
  }
  return out;
}

const unbrace = (text: string): string => (text.length >= 2 && text.startsWith('{') && text.endsWith('}') ? text.slice(1, -1) : text);
