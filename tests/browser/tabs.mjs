// Drives 8 tabs of the chat page on one origin in headless Chromium: more than the 6
// connections HTTP/1.1 allows per origin, so they only all work by sharing one stream
// (house.js). Messages published over HTTP reach every tab exactly once, in order, also while
// and after the tab holding the stream closes and another takes over.
//
//   node tests/browser/tabs.mjs http://127.0.0.1:PORT locks|fallback
//
// `fallback` deletes `navigator.locks` before any script runs, so the tabs elect the holder
// over their BroadcastChannel. Run by tests/tabs_browser.rs (which starts the chat); exits
// non-zero on the first failed check. CHROMIUM overrides the browser.
import { check, launchChromium } from "./launch.mjs";

const [base, mode] = process.argv.slice(2);
if (!base || !["locks", "fallback"].includes(mode)) {
  console.error("usage: node tabs.mjs BASE_URL locks|fallback");
  process.exit(2);
}

const TIMEOUT = 15_000;
const TABS = 8;
const room = "lobby";

/// Waits (bounded) until `probe()` returns something truthy; returns it.
async function until(what, probe) {
  const deadline = Date.now() + TIMEOUT;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const browser = await launchChromium();

const problems = [];

// What the server holds: open streams, from its metrics.
async function streams() {
  const text = await (await fetch(`${base}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith('house_connections{kind="stream"}'));
  return Number(line?.split(" ")[1]);
}

// Published over HTTP, one after another, so their order is the order they are sent in.
let sent = 0;
const expected = [];
async function publish(count) {
  for (let i = 0; i < count; i++) {
    sent += 1;
    const message = `tab message ${String(sent).padStart(2, "0")}`;
    const body = new URLSearchParams({ room, name: "bot", message });
    const response = await fetch(`${base}/send-message`, { method: "POST", body });
    if (response.status !== 200) throw new Error(`publishing ${message}: ${response.status}`);
    expected.push(message);
  }
}

// The id the server gave `message`: from the room's history, replayed to a stream that
// resumes from an id the server does not know.
async function idOf(message) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), TIMEOUT);
  try {
    const response = await fetch(`${base}/source?room=${room}`, {
      headers: { "Last-Event-ID": "unknown" },
      signal: controller.signal,
    });
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let text = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`the stream ended before ${message}`);
      text += decoder.decode(value, { stream: true });
      for (const block of text.split("\n\n")) {
        const id = block.match(/^id: (.*)$/m)?.[1];
        const data = block.match(/^data: (.*)$/m)?.[1];
        if (id && data && JSON.parse(data).message === message) return id;
      }
    }
  } finally {
    clearTimeout(timer);
    controller.abort();
  }
}

const shown = (page) =>
  page.evaluate(() => [...document.querySelectorAll("#messages .msg .text")].map((t) => t.textContent));

// Every page shows exactly `expected`: waits until each has as many, then compares (a
// duplicate or a gap shows up as a difference).
async function everyTabHasAll(pages, what) {
  for (const [i, page] of pages.entries()) {
    await page.waitForFunction(
      (n) => document.querySelectorAll("#messages .msg").length >= n,
      expected.length,
      { timeout: TIMEOUT },
    );
    const got = await shown(page);
    check(
      JSON.stringify(got) === JSON.stringify(expected),
      `tab ${i + 1} of ${pages.length} shows all ${expected.length} messages once, in order${what}` +
        (JSON.stringify(got) === JSON.stringify(expected) ? "" : `: ${JSON.stringify(got)}`),
    );
  }
}

// The pages whose own EventSource is open (the holders).
async function holders(pages) {
  const open = await Promise.all(
    pages.map((page) => page.evaluate(() => window.__sources.filter((s) => s.readyState !== 2).length)),
  );
  return pages.filter((_, i) => open[i] > 0);
}

try {
  const context = await browser.newContext({ viewport: { width: 800, height: 600 } });
  if (mode === "fallback") {
    await context.addInitScript(() => {
      delete Navigator.prototype.locks;
    });
  }
  // Every EventSource a page opens is recorded.
  await context.addInitScript(() => {
    const Original = window.EventSource;
    window.__sources = [];
    window.EventSource = function (...args) {
      const source = new Original(...args);
      window.__sources.push(source);
      return source;
    };
    window.EventSource.prototype = Original.prototype;
    Object.assign(window.EventSource, { CONNECTING: 0, OPEN: 1, CLOSED: 2 });
  });

  const pages = [];
  for (let i = 0; i < TABS; i++) {
    const page = await context.newPage();
    page.setDefaultTimeout(TIMEOUT);
    page.on("pageerror", (err) => problems.push(`tab ${i + 1}: script error: ${err.message}`));
    await page.goto(`${base}/index?room=${room}`);
    pages.push(page);
  }
  for (const page of pages) await page.locator("#status[data-state=live]").waitFor();
  // Each tab shows the count once it has joined the room: then messages reach it.
  for (const page of pages) await page.locator("#online[data-count='1']").waitFor();
  check(true, `${TABS} tabs of the chat are live in #${room}`);
  if (mode === "fallback") {
    const locks = await pages[0].evaluate(() => typeof navigator.locks);
    check(locks === "undefined", "the tabs have no Web Locks");
  }
  check((await holders(pages)).length === 1, "exactly one tab holds an EventSource");
  await until("one stream on the server", async () => (await streams()) === 1);
  check((await streams()) === 1, "the server holds exactly one stream for all the tabs");

  await publish(20);
  await everyTabHasAll(pages, "");

  // The holding tab closes; messages keep coming while the others take over.
  const [holder] = await holders(pages);
  const rest = pages.filter((page) => page !== holder);
  await holder.close();
  await publish(10);
  const [next] = await until("a new holder", async () => {
    const found = await holders(rest);
    return found.length === 1 ? found : null;
  });
  for (const page of rest) await page.locator("#status[data-state=live]").waitFor();
  check(true, "another tab took the stream over");
  await publish(10);
  await everyTabHasAll(rest, " through the handover");
  check((await holders(rest)).length === 1 && rest.includes(next), "still exactly one tab holds an EventSource");
  await until("one stream after the handover", async () => (await streams()) === 1);
  check((await streams()) === 1, "the server holds exactly one stream after the handover");

  // A tab in another room: the shared stream joins that room too, the lobby tabs do not show
  // its messages, and when its last tab closes the stream leaves it.
  const online = async (name) => (await (await fetch(`${base}/rooms/${name}/online`)).json()).count;
  const porch = await context.newPage();
  porch.setDefaultTimeout(TIMEOUT);
  porch.on("pageerror", (err) => problems.push(`porch tab: script error: ${err.message}`));
  await porch.goto(`${base}/index?room=porch`);
  await porch.locator("#online[data-count='1']").waitFor();
  check((await online("porch")) === 1 && (await online("lobby")) === 1, "a tab in another room joins it to the same stream");
  check((await streams()) === 1 && (await holders([...rest, porch])).length === 1, "still one stream, one holder");
  const body = new URLSearchParams({ room: "porch", name: "bot", message: "only on the porch" });
  check((await fetch(`${base}/send-message`, { method: "POST", body })).status === 200, "a message to the porch");
  await porch.locator("#messages .msg .text", { hasText: "only on the porch" }).waitFor();
  if (mode === "locks") {
    // A crash says no goodbye: the holder notices through the tab's Web Lock, which frees.
    const cdp = await context.newCDPSession(porch);
    const crashed = porch.waitForEvent("crash", { timeout: TIMEOUT });
    cdp.send("Page.crash").catch(() => {}); // answered by no one: the page is gone
    await crashed;
    check(true, "the porch's tab crashed");
  } else {
    await porch.close();
  }
  await until("the stream to leave the porch", async () => (await online("porch")) === 0);
  check((await online("lobby")) === 1, "the porch's last tab closed: the stream left the porch, not the lobby");

  // A late duplicate would arrive before a later message: one more, and the lists stay exact.
  await publish(1);
  await everyTabHasAll(rest, ", with nothing repeated late");

  // The last message once more, with its id, twice over the tabs' channel (as a replay that
  // overlaps what was delivered would come): every tab drops it.
  const last = expected[expected.length - 1];
  const id = await idOf(last);
  await rest[0].evaluate(
    ([id, data]) => {
      const bus = new BroadcastChannel(`house:${location.origin}/rooms/source`);
      for (let i = 0; i < 2; i++) bus.postMessage({ t: "event", type: "message", data, id });
      bus.close();
    },
    [id, JSON.stringify({ room, name: "bot", message: last })],
  );
  await publish(1);
  await everyTabHasAll(rest, ", a repeated id dropped");
  const notices = await Promise.all(rest.map((page) => page.locator("#messages .notice").count()));
  check(notices.every((n) => n === 0), `no tab was told it missed messages (${notices})`);

  check(problems.length === 0, `no script errors${problems.length ? ": " + problems.join("; ") : ""}`);
} catch (err) {
  console.error(err.stack || String(err));
  for (const problem of problems) console.error(problem);
  process.exitCode = 1;
} finally {
  await browser.close();
}
