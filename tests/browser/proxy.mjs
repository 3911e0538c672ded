// Ten EventSource streams on one page, through a reverse proxy over HTTP/2: headless Chromium
// loads the page from each proxy (TLS, a self-signed certificate), opens 10 streams (HTTP/1.1
// allows 6 per origin), POSTs one event, and every stream must receive it over h2. Then the
// same page straight from house over HTTP/1.1, where only 6 streams open: the limit the proxy
// lifts.
//
//   node tests/browser/proxy.mjs http://127.0.0.1:HOUSE_PORT https://127.0.0.1:NGINX_PORT https://localhost:CADDY_PORT
//
// Run by tests/proxy_browser.rs (which starts house and the proxies); exits non-zero on the first
// failed check. CHROMIUM overrides the browser (default /usr/bin/chromium, Debian's package).
import { check, launchChromium } from "./launch.mjs";

const [direct, ...proxies] = process.argv.slice(2);
if (!direct || proxies.length === 0) {
  console.error("usage: node proxy.mjs HOUSE_ORIGIN PROXY_ORIGIN...");
  process.exit(2);
}

/// More streams than HTTP/1.1's 6 connections per origin.
const STREAMS = 10;
// Every wait in the page is bounded by this; the whole script by the Rust test's timeout.
const TIMEOUT = 10_000;
// How long the HTTP/1.1 page gets to open streams that can never open.
const BLOCKED = 2_000;

const browser = await launchChromium([
  // The test's certificate is self-signed.
  "--ignore-certificate-errors",
]);

// Opens `count` streams, waits (up to `wait` ms) for them to open, POSTs one event and waits
// for it on each open stream; reports what happened (never hangs: every wait has a deadline).
async function streams(page, count, wait) {
  return page.evaluate(
    async ([count, wait, timeout]) => {
      const sources = [];
      const opened = await Promise.all(Array.from({ length: count }, (_, i) => new Promise((resolve) => {
        const source = new EventSource(`/events?n=${i}`);
        sources.push(source);
        const timer = setTimeout(() => resolve(false), wait);
        source.onopen = () => { clearTimeout(timer); resolve(true); };
      })));
      const received = Promise.all(sources.map((source, i) => opened[i]
        ? new Promise((resolve) => {
          const timer = setTimeout(() => resolve(null), timeout);
          source.onmessage = (event) => { clearTimeout(timer); resolve(event.data); };
        })
        : null));
      let post;
      try {
        const response = await fetch("/send?text=to-all", { method: "POST", signal: AbortSignal.timeout(wait) });
        post = `${response.status} ${await response.text()}`;
      } catch (err) {
        post = `rejected: ${err.name}`;
      }
      const got = post === "200 sent" ? await received : [];
      const protocol = performance.getEntriesByType("navigation")[0].nextHopProtocol;
      const sendProtocol = performance.getEntriesByType("resource")
        .filter((entry) => entry.name.includes("/send")).map((entry) => entry.nextHopProtocol);
      sources.forEach((source) => source.close());
      return { opened: opened.filter(Boolean).length, post, got, protocol, sendProtocol };
    },
    [count, wait, TIMEOUT],
  );
}

try {
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  for (const proxied of proxies) {
    const page = await context.newPage();
    page.setDefaultTimeout(TIMEOUT);
    await page.goto(`${proxied}/page`);
    const h2 = await streams(page, STREAMS, TIMEOUT);
    console.log(`through ${proxied}: ${JSON.stringify(h2)}`);
    check(h2.protocol === "h2", `${proxied}: the page came over HTTP/2 (${h2.protocol})`);
    check(h2.opened === STREAMS, `${proxied}: all ${STREAMS} streams opened through the proxy (${h2.opened})`);
    check(h2.post === "200 sent", `${proxied}: the POST beside them is answered (${h2.post})`);
    check(h2.sendProtocol.every((p) => p === "h2"), `${proxied}: the POST went over HTTP/2 too (${h2.sendProtocol})`);
    check(h2.got.length === STREAMS && h2.got.every((data) => data === "to-all"),
      `${proxied}: every one of the ${STREAMS} streams received the event`);
    await page.close();
  }

  // The control: the same page straight from house, HTTP/1.1 without TLS.
  const plain = await context.newPage();
  plain.setDefaultTimeout(TIMEOUT);
  await plain.goto(`${direct}/page`);
  const h1 = await streams(plain, STREAMS, BLOCKED);
  console.log(`straight to house: ${JSON.stringify(h1)}`);
  check(h1.protocol === "http/1.1", `the direct page came over HTTP/1.1 (${h1.protocol})`);
  check(h1.opened === 6, `over HTTP/1.1 only 6 streams open (${h1.opened})`);
  check(h1.post === "rejected: TimeoutError", `and a POST beside them waits for a connection (${h1.post})`);
} catch (err) {
  console.error(err.stack || String(err));
  process.exitCode = 1;
} finally {
  await browser.close();
}
