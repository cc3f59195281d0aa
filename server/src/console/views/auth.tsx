// Pages shown before sign-in: the sign-in page (SSO, or the dev login in `credbroker dev`), the
// page that follows a successful sign-in, and errors.
import { Document, type Frame } from './layout.js';

export function LoginPage(props: { frame: Frame; mode: 'sso' | 'dev'; next: string; csrf: string | undefined; message?: string | undefined; issuer?: string | undefined }) {
  return (
    <Document title="Sign in" frame={props.frame}>
      <main id="main" class="login" tabIndex={-1}>
        <h1>credbroker console</h1>
        {props.message && (
          <p class="notice" role="status">
            {props.message}
          </p>
        )}
        {props.mode === 'sso' ? (
          <>
            <p>Sign in with your organization's identity provider.</p>
            <p>
              <a class="button primary" href={`/console/auth/start?next=${encodeURIComponent(props.next)}`}>
                Sign in with SSO
              </a>
            </p>
            {props.issuer && <p class="muted">Identity provider: {props.issuer}</p>}
          </>
        ) : (
          <form method="post" action="/console/auth/dev" class="dev-login">
            <h2>Dev login</h2>
            <p>
              <strong>Dev mode only.</strong> No SSO is configured: pick a role. Production consoles sign in with OIDC (console.sso).
            </p>
            <input type="hidden" name="_csrf" value={props.csrf} />
            <input type="hidden" name="next" value={props.next} />
            <button type="submit" name="role" value="operator" class="primary">
              Dev login as operator
            </button>{' '}
            <button type="submit" name="role" value="viewer">
              Dev login as viewer
            </button>
          </form>
        )}
      </main>
    </Document>
  );
}

/**
 * After the identity provider's redirect: the session cookie is SameSite=Strict, which a browser
 * does not send on a redirect chain that began on another site. A page of our own that moves on
 * by itself makes the next request same-site.
 */
export function SignedInPage(props: { frame: Frame; next: string }) {
  return (
    <Document title="Signed in" frame={props.frame} head={<meta http-equiv="refresh" content={`0;url=${props.next}`} />}>
      <main id="main" class="login" tabIndex={-1}>
        <h1>Signed in</h1>
        <p>
          <a href={props.next}>Continue to the console</a>
        </p>
      </main>
    </Document>
  );
}

export function ErrorPage(props: { frame: Frame; status: number; title: string; message: string; requestId: string | undefined; signedIn: boolean }) {
  return (
    <Document title={props.title} frame={props.frame}>
      <main id="main" class="login" tabIndex={-1}>
        <h1>{props.title}</h1>
        <p>{props.message}</p>
        {props.requestId && <p class="muted">Request id: {props.requestId}</p>}
        <p>{props.signedIn ? <a href="/console/">Back to the console</a> : <a href="/console/login">Sign in</a>}</p>
      </main>
    </Document>
  );
}
