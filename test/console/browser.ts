// Debian's Chromium, driven by playwright-core (its own browser downloads cannot reach the
// internet here): headless, no sandbox (root in CI), a fresh profile per person. Tests skip with
// a clear message when Chromium is not installed (.ci/run installs it).
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

export function chromiumPath(): string | undefined {
  try {
    return execFileSync('sh', ['-c', 'command -v chromium || command -v chromium-browser'], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}

export const CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

export interface CspViolation {
  documentURI: string;
  violatedDirective: string;
  blockedURI: string;
}

export interface Person {
  context: BrowserContext;
  page: Page;
  /** Every CSP violation any page of this browser reported (securitypolicyviolation events). */
  violations: CspViolation[];
  /** Every JavaScript dialog (alert/confirm/prompt) that opened: stored XSS would open one. */
  dialogs: string[];
  close(): Promise<void>;
}

export async function openBrowser(executablePath: string): Promise<Person> {
  const profile = mkdtempSync(path.join(tmpdir(), 'credbroker-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath,
    headless: true,
    args: CHROMIUM_FLAGS,
    viewport: { width: 1366, height: 860 },
  });
  const violations: CspViolation[] = [];
  const dialogs: string[] = [];
  await context.exposeBinding('__reportCspViolation', (_source, v: CspViolation) => {
    violations.push(v);
  });
  await context.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      (window as unknown as { __reportCspViolation(v: unknown): void }).__reportCspViolation({ documentURI: e.documentURI, violatedDirective: e.violatedDirective, blockedURI: e.blockedURI });
    });
  });
  context.on('page', (p) => p.on('dialog', (d) => (dialogs.push(d.message()), void d.dismiss())));
  const page = context.pages()[0] ?? (await context.newPage());
  page.on('dialog', (d) => (dialogs.push(d.message()), void d.dismiss()));
  return {
    context,
    page,
    violations,
    dialogs,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** Screenshots for people and CI: test-output/console/ (gitignored; CI keeps it as an artifact). */
export const SCREENSHOTS = path.resolve(import.meta.dirname, '../../test-output/console');

export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), fullPage: true });
}
