import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { Browser, BrowserContext, Page } from 'playwright-core';

/**
 * The browsers the end-to-end tests run in, both Debian's packages (Playwright's own browser downloads cannot
 * work here; `.ci/run` installs both): Chromium through playwright-core's CDP driver, Firefox ESR through its
 * WebDriver BiDi channel (`moz-firefox`) behind firefox-bidi-relay.mjs. Each is skipped, saying why, when absent.
 */

export type BrowserName = 'chromium' | 'firefox';

export interface Engine {
  name: BrowserName;
  /** Why this browser's tests cannot run here, or undefined when they can. */
  missing: string | undefined;
  /** Where this browser's screenshots and metrics go. */
  screenshots: string;
  launch(): Promise<Browser>;
}

const launched = new Map<BrowserName, Promise<Browser>>();

/** The engine's browser, launched on first use and shared by a test file's suites (Firefox takes seconds to start). */
export function sharedBrowser(engine: Engine): Promise<Browser> {
  if (!launched.has(engine.name)) launched.set(engine.name, engine.launch());
  return launched.get(engine.name)!;
}

/** Closes every shared browser: a test file's last `after`. */
export async function closeSharedBrowsers(): Promise<void> {
  const browsers = await Promise.allSettled(launched.values());
  launched.clear();
  await Promise.all(browsers.map((result) => (result.status === 'fulfilled' ? result.value.close() : undefined)));
}

export const CHROMIUM = process.env.YOKE_TEST_CHROMIUM ?? '/usr/bin/chromium';
export const FIREFOX = process.env.YOKE_TEST_FIREFOX ?? '/usr/bin/firefox-esr';

/** Screenshots of every page, kept as test artefacts (ignored by git; docs/UI.md links the folder). */
export const SCREENSHOTS = fileURLToPath(new URL('./screenshots/', import.meta.url));
const screenshotsOf = (name: BrowserName) => (name === 'chromium' ? SCREENSHOTS : `${SCREENSHOTS}${name}/`);

const missing = (path: string, pkg: string) => (existsSync(path) ? undefined : `needs ${pkg} at ${path} (apt-get install ${pkg})`);

export const ENGINES: Engine[] = [
  {
    name: 'chromium',
    missing: missing(CHROMIUM, 'chromium'),
    screenshots: screenshotsOf('chromium'),
    async launch() {
      const { chromium } = await import('playwright-core');
      await mkdir(this.screenshots, { recursive: true });
      // Root in CI has no user namespaces for Chromium's sandbox; the pages are our own.
      return chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
    },
  },
  {
    name: 'firefox',
    missing: missing(FIREFOX, 'firefox-esr'),
    screenshots: screenshotsOf('firefox'),
    async launch() {
      const { firefox } = await import('playwright-core');
      await mkdir(this.screenshots, { recursive: true });
      // The relay starts Firefox (YOKE_FIREFOX_BINARY) and stands between it and Playwright; see its header.
      const relay = fileURLToPath(new URL('./firefox-bidi-relay.mjs', import.meta.url));
      return firefox.launch({ channel: 'moz-firefox', executablePath: relay, env: { ...process.env, YOKE_FIREFOX_BINARY: FIREFOX } });
    },
  },
];

export const DESKTOP = { width: 1280, height: 800 };
export const PHONE = { width: 390, height: 844 };

/** A page that records every console error and uncaught exception, so a test can assert there were none. */
export interface WatchedPage {
  page: Page;
  context: BrowserContext;
  errors: string[];
  close(): Promise<void>;
}

export async function openPage(browser: Browser, viewport = DESKTOP, options: { token?: string } = {}): Promise<WatchedPage> {
  const context = await browser.newContext({ viewport, deviceScaleFactor: 1 });
  if (options.token) {
    await context.addInitScript((token) => {
      // The script runs in every document, also the blank one a page starts with, whose origin in Firefox is
      // opaque: localStorage throws a SecurityError there.
      if (self.origin !== 'null') localStorage.setItem('yoke.token', token);
    }, options.token);
  }
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
  const browser = page.context().browser()!.browserType().name() as BrowserName;
  await page.screenshot({ path: `${screenshotsOf(browser)}${name}-${width <= PHONE.width ? 'phone' : 'desktop'}.png`, fullPage: false });
}

/** The page fits its viewport's width: nothing forces sideways scrolling of the whole page on a phone. */
export async function horizontalOverflow(page: Page): Promise<number> {
  return page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
}
