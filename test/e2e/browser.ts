import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { Browser, BrowserContext, Page } from 'playwright-core';

/**
 * Headless Chromium for the end-to-end tests: Debian's `chromium` package driven by playwright-core
 * (Playwright's own browser download cannot work here). `.ci/run` installs the package.
 */

export const CHROMIUM = process.env.YOKE_TEST_CHROMIUM ?? '/usr/bin/chromium';
/** Why the browser tests cannot run here, or undefined when they can. */
export const noBrowser: string | undefined = existsSync(CHROMIUM) ? undefined : `needs Chromium at ${CHROMIUM} (apt-get install chromium)`;

/** Screenshots of every page, kept as test artefacts (ignored by git; docs/UI.md links the folder). */
export const SCREENSHOTS = fileURLToPath(new URL('./screenshots/', import.meta.url));

export const DESKTOP = { width: 1280, height: 800 };
export const PHONE = { width: 390, height: 844 };

export async function launchChromium(): Promise<Browser> {
  const { chromium } = await import('playwright-core');
  await mkdir(SCREENSHOTS, { recursive: true });
  // Root in CI has no user namespaces for Chromium's sandbox; the pages are our own.
  return chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
}

/** A page that records every console error and uncaught exception, so a test can assert there were none. */
export interface WatchedPage {
  page: Page;
  context: BrowserContext;
  errors: string[];
  close(): Promise<void>;
}

export async function openPage(browser: Browser, viewport = DESKTOP, options: { token?: string } = {}): Promise<WatchedPage> {
  const context = await browser.newContext({ viewport, deviceScaleFactor: 1 });
  if (options.token) await context.addInitScript((token) => localStorage.setItem('yoke.token', token), options.token);
  // Fail in seconds, not Playwright's 30: every wait here is for something local.
  context.setDefaultTimeout(10_000);
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(`console: ${message.text()} (${message.location().url})`);
  });
  page.on('pageerror', (error) => errors.push(`page error: ${error.message}`));
  return { page, context, errors, close: () => context.close() };
}

export async function screenshot(page: Page, name: string): Promise<void> {
  const { width } = page.viewportSize()!;
  await page.screenshot({ path: `${SCREENSHOTS}${name}-${width <= PHONE.width ? 'phone' : 'desktop'}.png`, fullPage: false });
}

/** The page fits its viewport's width: nothing forces sideways scrolling of the whole page on a phone. */
export async function horizontalOverflow(page: Page): Promise<number> {
  return page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
}
