// Chromium's EventSource on a compressed stream: headless Chromium loads a page from a house
// server with compression on, opens an EventSource (Chromium sends Accept-Encoding: gzip), and
// must receive every event exactly: live ones, then, after the server ends the stream (its
// lifetime), the ones published while it was away, replayed on its own reconnect with
// Last-Event-ID, then live ones again.
//
//   node tests/browser/compression.mjs http://127.0.0.1:PORT
//
// Run by tests/compression_browser.rs; exits non-zero on the first failed check.
import { check, launchChromium } from "./launch.mjs";

const [origin] = process.argv.slice(2);
if (!origin) {
  console.error("usage: node compression.mjs ORIGIN");
  process.exit(2);
}

// Every wait is bounded by this; the whole script by the Rust test's timeout.
const TIMEOUT = 20_000;

// Polls `condition` (async) until it holds or the deadline passes.
async function waitFor(what, condition) {
  const deadline = Date.now() + TIMEOUT;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function publish(text) {
  const response = await fetch(`${origin}/publish?text=${encodeURIComponent(text)}`);
  if (!response.ok) throw new Error(`/publish answered ${response.status}`);
}

// Events of every shape: JSON with non-ASCII text, multi-line, empty, and one of 20 KB.
function batch(name, count) {
  const texts = [];
  for (let i = 0; i < count; i++) {
    texts.push(JSON.stringify({ batch: name, seq: i, message: `hello ${i}, ça va? 🙂` }));
  }
  texts.push(`${name}: line one\nline two`);
  texts.push("");
  texts.push(`${name}:` + Array.from({ length: 20_000 }, (_, i) => "abcdefghij"[(i * 7) % 10]).join(""));
  return texts;
}

const browser = await launchChromium();
try {
  const page = await browser.newPage();
  // Every response to the EventSource's requests, with what it asked and what it got.
  const streams = [];
  page.on("response", async (response) => {
    if (!response.url().includes("/events")) return;
    const request = await response.request().allHeaders();
    const headers = await response.allHeaders();
    streams.push({
      acceptEncoding: request["accept-encoding"] || "",
      lastEventId: request["last-event-id"] || null,
      contentEncoding: headers["content-encoding"] || null,
    });
  });
  await page.goto(`${origin}/page`);
  await page.evaluate(() => {
    window.log = { opens: 0, errors: 0, messages: [] };
    const events = new EventSource("/events");
    events.onopen = () => { window.log.opens += 1; };
    events.onerror = () => { window.log.errors += 1; };
    events.onmessage = (event) => window.log.messages.push(event.data);
  });
  await waitFor("the stream to open", () => page.evaluate(() => window.log.opens === 1));
  const sent = [];
  const received = () => page.evaluate(() => window.log.messages.length);

  // Live events.
  for (const text of batch("live", 20)) {
    await publish(text);
    sent.push(text);
  }
  await waitFor("the live events", async () => (await received()) === sent.length);

  // The server ends the stream at its lifetime; publish while the page is away.
  await waitFor("the stream to end", () => page.evaluate(() => window.log.errors >= 1));
  check((await page.evaluate(() => window.log.opens)) === 1,
    "the stream ended, and the page has not reconnected yet");
  for (const text of batch("missed", 10)) {
    await publish(text);
    sent.push(text);
  }
  await waitFor("the reconnect", () => page.evaluate(() => window.log.opens >= 2));
  await waitFor("the replayed events", async () => (await received()) >= sent.length);

  // Live again, on the reconnected stream.
  for (const text of batch("again", 5)) {
    await publish(text);
    sent.push(text);
  }
  await waitFor("the last events", async () => (await received()) >= sent.length);
  const messages = await page.evaluate(() => window.log.messages);
  check(messages.length === sent.length && messages.every((m, i) => m === sent[i]),
    `all ${sent.length} events arrived exactly, in order, none twice`);

  check(streams.length >= 2, `the EventSource connected ${streams.length} times`);
  check(streams.every((s) => /\bgzip\b/.test(s.acceptEncoding) && s.contentEncoding === "gzip"),
    `every stream was gzip: ${JSON.stringify(streams)}`);
  check(streams[0].lastEventId === null && streams.slice(1).every((s) => s.lastEventId),
    `the reconnect sent Last-Event-ID ${streams[1].lastEventId}`);
  // The events published while the page was away came in its replay (compressed for that
  // stream alone); each live one was compressed once, when it was fanned out.
  const live = sent.length - batch("missed", 10).length;
  const stats = await (await fetch(`${origin}/stats`)).json();
  check(stats.replays === 1 && stats.events_compressed === live,
    `the reconnect was a replay, and each of the ${live} live events was compressed once`);
} finally {
  await browser.close();
}
