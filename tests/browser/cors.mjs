// A page on one origin uses house on another: headless Chromium loads a page from origin A,
// whose script POSTs JSON (a preflight first), opens a credentialed EventSource to the API on
// origin B, and moves a joinable stream of B's to another room by its id; the same script on origin C, which B does not allow, is refused both.
//
//   node tests/browser/cors.mjs http://127.0.0.1:PORT_A http://localhost:PORT_B http://127.0.0.1:PORT_C
//
// Run by tests/cors_browser.rs (which starts the three servers); exits non-zero on the first
// failed check. CHROMIUM overrides the browser (default /usr/bin/chromium, Debian's package).
import { check, launchChromium } from "./launch.mjs";

const [allowed, api, refused] = process.argv.slice(2);
if (!allowed || !api || !refused) {
  console.error("usage: node cors.mjs PAGE_ORIGIN API_ORIGIN REFUSED_ORIGIN");
  process.exit(2);
}

// Every wait in the page is bounded by this; the whole script by the Rust test's timeout.
const TIMEOUT = 10_000;

const browser = await launchChromium();

// What the README shows a page doing: subscribe with credentials, then publish with a JSON
// POST; resolves with what happened to each (never hangs: every wait has a deadline).
async function useApi(page, text) {
  return page.evaluate(
    async ([api, text, timeout]) => {
      const result = { open: false, message: null, streamError: false, readyState: null, post: null };
      const events = new EventSource(`${api}/events`, { withCredentials: true });
      const opened = await new Promise((resolve) => {
        const timer = setTimeout(() => resolve("timeout"), timeout);
        events.onopen = () => { clearTimeout(timer); resolve("open"); };
        events.onerror = () => { clearTimeout(timer); resolve("error"); };
      });
      result.open = opened === "open";
      result.streamError = opened === "error";
      const message = new Promise((resolve) => {
        const timer = setTimeout(() => resolve(null), timeout);
        events.onmessage = (event) => { clearTimeout(timer); resolve(event.data); };
      });
      try {
        const response = await fetch(`${api}/send`, {
          method: "POST",
          credentials: "include",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ text }),
        });
        result.post = `${response.status} ${await response.text()}`;
      } catch (err) {
        result.post = `rejected: ${err.name}`;
      }
      if (result.open) result.message = await message;
      result.readyState = events.readyState;
      events.close();
      return result;
    },
    [api, text, TIMEOUT],
  );
}

// A joinable stream from the other origin, moved to room `other` by its id (its first event):
// afterwards it gets what is published to `other`, and no longer what goes to `room`.
async function switchRooms(page) {
  return page.evaluate(
    async ([api, timeout]) => {
      const result = { id: null, switched: null, messages: [] };
      const events = new EventSource(`${api}/joinable`, { withCredentials: true });
      result.id = await new Promise((resolve) => {
        const timer = setTimeout(() => resolve(null), timeout);
        events.addEventListener("house-stream", (event) => { clearTimeout(timer); resolve(event.data); });
      });
      if (result.id === null) return result;
      const response = await fetch(`${api}/switch`, {
        method: "POST",
        credentials: "include",
        body: new URLSearchParams({ stream: result.id, room: "other" }),
      });
      result.switched = `${response.status} ${await response.text()}`;
      const got = new Promise((resolve) => {
        const timer = setTimeout(() => resolve(), timeout);
        events.onmessage = (event) => {
          result.messages.push(event.data);
          if (event.data.includes("in other")) { clearTimeout(timer); resolve(); }
        };
      });
      for (const [room, text] of [["room", "in room"], ["other", "in other"]]) {
        await fetch(`${api}/send?room=${room}`, {
          method: "POST",
          credentials: "include",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ text }),
        });
      }
      await got;
      events.close();
      return result;
    },
    [api, TIMEOUT],
  );
}

try {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT);
  await page.goto(`${allowed}/page`);
  const ok = await useApi(page, "hello from A");
  console.log(`allowed origin: ${JSON.stringify(ok)}`);
  check(ok.open, "the allowed origin's EventSource (withCredentials) opens");
  check(ok.post === "200 sent", `the allowed origin's JSON POST is answered (${ok.post})`);
  check(ok.message === JSON.stringify({ text: "hello from A" }), "the allowed origin's stream receives the published event");

  const moved = await switchRooms(page);
  console.log(`room switch: ${JSON.stringify(moved)}`);
  check(moved.id !== null && moved.switched === "200 switched", `the allowed origin's stream is moved by its id (${moved.switched})`);
  check(JSON.stringify(moved.messages) === JSON.stringify([JSON.stringify({ text: "in other" })]),
    "the allowed origin switches its stream to another room");

  const other = await context.newPage();
  other.setDefaultTimeout(TIMEOUT);
  await other.goto(`${refused}/page`);
  const no = await useApi(other, "hello from C");
  console.log(`refused origin: ${JSON.stringify(no)}`);
  check(!no.open && no.streamError && no.readyState === 2, "the refused origin's EventSource errors and closes");
  check(no.post === "rejected: TypeError", `the refused origin's fetch rejects (${no.post})`);
} catch (err) {
  console.error(err.stack || String(err));
  process.exitCode = 1;
} finally {
  await browser.close();
}
