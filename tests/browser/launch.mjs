// What every browser driver here shares: headless Chromium launched the same way, and the
// check that prints what passed and stops the driver at the first failure.
//
// CHROMIUM overrides the browser (default /usr/bin/chromium, Debian's package). playwright
// gives each launch a fresh temporary --user-data-dir of its own.
import { chromium } from "playwright-core";

/** Launches headless Chromium with the flags every driver needs, plus `extraArgs`. */
export function launchChromium(extraArgs = []) {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    timeout: 30_000,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      ...extraArgs,
    ],
  });
}

/** Prints `ok: what`, or throws (so the driver exits non-zero) when `ok` is false. */
export function check(ok, what) {
  if (!ok) throw new Error(`check failed: ${what}`);
  console.log(`ok: ${what}`);
}
