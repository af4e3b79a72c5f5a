/** The one headless Chromium of a test file (Debian's `chromium`, driven by playwright-core), closed after the file. */
import { after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

export const CHROMIUM = process.env.LOWRANK_CHROMIUM ?? '/usr/bin/chromium';

let browser: Promise<Browser> | undefined;

/** Starts (once) and returns the browser; fails with what to install when there is none. */
export function launch(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    assert.fail(`chromium is missing (${CHROMIUM} not found): apt-get install chromium (or set LOWRANK_CHROMIUM to a Chromium binary)`);
  }
  browser ??= chromium.launch({ executablePath: CHROMIUM, headless: true, timeout: 30_000 });
  return browser;
}

// Registered when the test file imports this module, so the browser lives until the file's last test
// (an `after` registered inside a test would close it when that test ends).
after(async () => {
  await (await browser?.catch(() => undefined))?.close();
});
