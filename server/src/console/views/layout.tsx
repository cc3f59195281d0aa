// The page frame: navigation, who is signed in (and as what), sign-out, and the dev-mode banner.
// Every value is rendered by Preact, which escapes it: audit data is only ever text here.
import type { ComponentChildren } from 'preact';
import type { ConsoleRole, Person } from '../access.js';

export interface ViewContext extends Frame {
  person: Person;
  role: ConsoleRole;
  csrf: string;
  /** The current path, to mark the navigation entry. */
  path: string;
}

export interface Frame {
  dev: boolean;
  script: string | undefined;
  style: string | undefined;
  icon?: string | undefined;
}

const NAV: Array<[string, string]> = [
  ['/console/', 'Overview'],
  ['/console/decisions', 'Decisions'],
  ['/console/revocations', 'Revocations'],
  ['/console/keys', 'Static keys'],
  ['/console/policy', 'Policy'],
  ['/console/policy/diff', 'Policy change review'],
];

export function Document(props: { title: string; frame: Frame; head?: ComponentChildren; children: ComponentChildren }) {
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <meta name="referrer" content="same-origin" />
        <title>{`${props.title} · credbroker${props.frame.dev ? ' (dev)' : ''}`}</title>
        {props.frame.style && <link rel="stylesheet" href={props.frame.style} />}
        {props.frame.icon && <link rel="icon" href={props.frame.icon} type="image/svg+xml" />}
        {props.frame.script && <script type="module" src={props.frame.script} />}
        {props.head}
      </head>
      <body>
        <a class="skip" href="#main">
          Skip to content
        </a>
        {props.frame.dev && (
          <p class="dev-banner" role="note">
            DEV MODE — dev login, no SSO. Not for production.
          </p>
        )}
        {props.children}
      </body>
    </html>
  );
}

export function Page(props: { title: string; ctx: ViewContext; children: ComponentChildren }) {
  const { ctx } = props;
  const current = (href: string) => (href === '/console/' ? ctx.path === '/' : ctx.path === href.slice('/console'.length) || (href !== '/console/policy' && ctx.path.startsWith(`${href.slice('/console'.length)}/`)));
  return (
    <Document title={props.title} frame={ctx}>
      <header class="top">
        <span class="brand">credbroker</span>
        <nav aria-label="Console">
          <ul>
            {NAV.map(([href, label]) => (
              <li>
                <a href={href} aria-current={current(href) ? 'page' : undefined}>
                  {label}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <div class="who">
          <span title={ctx.person.groups.length ? `groups: ${ctx.person.groups.join(', ')}` : undefined}>{ctx.person.id}</span>
          <span class={`badge role-${ctx.role}`}>{ctx.role}</span>
          <form method="post" action="/console/logout">
            <input type="hidden" name="_csrf" value={ctx.csrf} />
            <button type="submit">Sign out</button>
          </form>
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        <h1>{props.title}</h1>
        {props.children}
      </main>
    </Document>
  );
}

/** A hidden CSRF field: every form that changes anything carries one. */
export const Csrf = (props: { ctx: { csrf: string } }) => <input type="hidden" name="_csrf" value={props.ctx.csrf} />;

export const Time = (props: { iso: string | null | undefined }) =>
  props.iso ? <time datetime={props.iso}>{props.iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z')}</time> : <span class="muted">—</span>;

export function Outcome(props: { decision: unknown }) {
  const d = typeof props.decision === 'string' ? props.decision : '';
  const label = d === 'allow' ? 'issued' : d === 'deny' ? 'denied' : d === 'error' ? 'failed' : '—';
  return <span class={`outcome outcome-${d || 'none'}`}>{label}</span>;
}

/** Any value as text: strings as they are, everything else as JSON. */
export const text = (v: unknown): string => (v === undefined || v === null ? '' : typeof v === 'string' ? v : JSON.stringify(v));

export function Problems(props: { items: string[] }) {
  if (props.items.length === 0) return null;
  return (
    <div class="notice error" role="alert">
      <ul>
        {props.items.map((p) => (
          <li>{p}</li>
        ))}
      </ul>
    </div>
  );
}

export const ago = (seconds: number): string =>
  seconds < 3600 ? `${Math.max(0, Math.floor(seconds / 60))} min` : seconds < 172_800 ? `${Math.floor(seconds / 3600)} h` : `${Math.floor(seconds / 86_400)} days`;
