// An EventSource refused at the connection cap comes back by itself: headless Chromium loads a
// page from the steering server, which fills the other server's cap; the page opens an
// EventSource to that capped server (refused with a retry: instead of a 503, so it keeps trying), the steering
// server frees the cap, and the stream connects and receives an event.
//
//   node tests/browser/cap.mjs http://CAPPED_ADDR http://STEERING_ADDR
//
// Run by tests/cap_browser.rs; exits non-zero on the first failed check.
import { check, launchChromium } from "./launch.mjs";

const [capped, steering] = process.argv.slice(2);
if (!capped || !steering) {
  console.error("usage: node cap.mjs CAPPED_ORIGIN STEERING_ORIGIN");
  process.exit(2);
}

// Every wait is bounded by this; the whole script by the Rust test's timeout.
const TIMEOUT = 15_000;

async function steer(path) {
  const response = await fetch(`${steering}${path}`);
  if (!response.ok) throw new Error(`${path} answered ${response.status}`);
  return response.text();
}

// Polls `condition` (async) until it holds or the deadline passes.
async function waitFor(what, condition) {
  const deadline = Date.now() + TIMEOUT;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const browser = await launchChromium();
try {
  const page = await browser.newPage();
  await page.goto(`${steering}/page`);
  const held = Number(await steer("/fill"));
  check(held >= 1, `the cap is full (${held} streams held by the test)`);

  await page.evaluate((capped) => {
    window.log = { errors: 0, closed: false, opened: false, messages: [] };
    const events = new EventSource(`${capped}/events`);
    events.onerror = () => {
      window.log.errors += 1;
      if (events.readyState === EventSource.CLOSED) window.log.closed = true;
    };
    events.onopen = () => { window.log.opened = true; };
    events.onmessage = (event) => window.log.messages.push(event.data);
  }, capped);
  // Refused twice means it came back after the first refusal instead of giving up.
  await waitFor("two refusals", async () => Number(await steer("/deferred")) >= 2);
  const refused = await page.evaluate(() => window.log);
  // (Chromium reports the refusal's short stream as open, then as an error, then retries.)
  check(!refused.closed && refused.errors >= 1 && refused.messages.length === 0,
    `refused at the cap, the EventSource keeps retrying (${refused.errors} errors, never closed)`);

  await steer("/free");
  await waitFor("an event", async () => {
    await steer("/publish?text=after-the-cap");
    return page.evaluate(() => window.log.messages.includes("after-the-cap"));
  });
  check(!(await page.evaluate(() => window.log.closed)),
    "the stream received an event once the cap had room");
} finally {
  await browser.close();
}
