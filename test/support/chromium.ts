/**
 * Debian's Chromium, headless, for the browser tests (no browser download: `/usr/bin/chromium`,
 * or TALLY_CHROMIUM). A missing browser fails the suite saying how to install it.
 */
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

export const CHROMIUM = process.env.TALLY_CHROMIUM ?? '/usr/bin/chromium';
/** What the probe found works here: no background networking (the network is closed), no sandbox as root. */
const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM))
    throw new Error(
      `browser tests need Chromium at ${CHROMIUM}: apt-get install -y chromium (.ci/run does), or set TALLY_CHROMIUM`,
    );
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_FLAGS });
}
