// Drives the chat page's archive in headless Chromium: a room with a long history shows its
// latest messages, scrolling to the top loads the older ones a page at a time, and a live
// message shows once.
//
//   node tests/browser/archive.mjs http://127.0.0.1:PORT ROOM EXPECTED.json [live]
//
// EXPECTED.json holds the room's archived messages, oldest first, as [name, text] pairs. With
// `live`, the script then sends two messages from the page and switches rooms away and back.
// Run by tests/archive_browser.rs (which seeds the room and starts the server); exits non-zero
// on the first failed check. CHROMIUM overrides the browser (default /usr/bin/chromium).
import { readFileSync } from "node:fs";
import { check, launchChromium } from "./launch.mjs";

const [base, room, expectedFile, mode] = process.argv.slice(2);
if (!base || !room || !expectedFile) {
  console.error("usage: node archive.mjs BASE_URL ROOM EXPECTED.json [live]");
  process.exit(2);
}
const expected = JSON.parse(readFileSync(expectedFile, "utf8"));

const TIMEOUT = 10_000;
// The page asks for this many at a time (static/chat.js `PAGE`).
const PAGE = 50;

const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
const describe = (shown) =>
  `${shown.length} shown, from ${JSON.stringify(shown[0])} to ${JSON.stringify(shown.at(-1))}`;

const browser = await launchChromium([
  // A wheel scroll lands at once instead of animating on past the page's own scroll fix-up,
  // so each scroll to the top asks for exactly one page.
  "--disable-smooth-scrolling",
]);

const problems = [];

// The messages the page shows, top to bottom, as [name, text].
const shownIn = (page) =>
  page.evaluate(() =>
    [...document.querySelectorAll("#messages .msg")].map((m) => [
      m.querySelector(".who")?.textContent,
      m.querySelector(".text")?.textContent,
    ]),
  );

// Waits until the page shows more than `count` messages.
async function showsMore(page, count) {
  await page.waitForFunction((n) => document.querySelectorAll("#messages .msg").length > n, count, {
    timeout: TIMEOUT,
  });
}

try {
  const context = await browser.newContext({ viewport: { width: 900, height: 640 }, deviceScaleFactor: 1 });
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT);
  page.on("pageerror", (err) => problems.push(`script error: ${err.message}`));
  page.on("dialog", (dialog) => {
    problems.push(`a dialog opened (${dialog.message()})`);
    dialog.dismiss();
  });
  const asked = [];
  page.on("request", (r) => {
    if (new URL(r.url()).pathname.endsWith("/messages")) asked.push(new URL(r.url()).search);
  });

  await page.goto(`${base}/index?room=${encodeURIComponent(room)}`);
  await page.locator("#status[data-state=live]").waitFor();
  await showsMore(page, 0);

  // Entering the room shows its newest page, oldest of them on top, scrolled to the bottom.
  let shown = await shownIn(page);
  const latest = expected.slice(-PAGE);
  check(same(shown, latest), `the room opens with its latest ${latest.length} messages in order (${describe(shown)})`);
  const atBottom = await page.evaluate(() => {
    const feed = document.getElementById("feed");
    return feed.scrollHeight - feed.scrollTop - feed.clientHeight < 2;
  });
  check(atBottom, "the message list starts scrolled to the newest message");
  check(await page.locator("#empty").isHidden(), "the 'no messages yet' line is hidden");

  // Scrolling to the top, as a person does with the wheel, loads the page before, until the
  // very first message is shown.
  const feed = page.locator("#feed");
  await feed.hover();
  let scrolls = 0;
  while (shown.length < expected.length) {
    check(scrolls < Math.ceil(expected.length / PAGE) + 2, `older messages keep coming (${describe(shown)})`);
    const topBefore = shown[0];
    await page.mouse.wheel(0, -1_000_000);
    await showsMore(page, shown.length);
    scrolls += 1;
    shown = await shownIn(page);
    check(
      same(shown, expected.slice(-shown.length)),
      `scroll ${scrolls} to the top loads older messages above, in order, with no duplicates (${describe(shown)})`,
    );
    // The view stays where it was: what was on top is still in view, not far below.
    const kept = await page.evaluate((text) => {
      const feed = document.getElementById("feed").getBoundingClientRect();
      const item = [...document.querySelectorAll("#messages .msg")].find(
        (m) => m.querySelector(".text")?.textContent === text,
      );
      const at = item?.getBoundingClientRect();
      return at !== undefined && at.bottom > feed.top && at.top < feed.bottom;
    }, topBefore[1]);
    check(kept, `the message that was on top (${JSON.stringify(topBefore[1])}) stays in view`);
  }
  check(same(shown, expected), `all ${expected.length} messages are shown, the first one on top`);
  check(
    asked.length === Math.ceil(expected.length / PAGE),
    `the page asked for ${asked.length} pages of ${PAGE} (${asked.join(" ")})`,
  );
  // Nothing older: another scroll to the top asks nothing more.
  await page.mouse.wheel(0, -1_000_000);
  await page.evaluate(() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done))));
  check(
    same(await shownIn(page), expected) && asked.length === Math.ceil(expected.length / PAGE),
    "scrolling past the first message changes nothing and asks nothing",
  );

  if (mode === "live") {
    // A message sent now comes live (and is archived); it shows once, at the bottom. The second
    // one is the barrier: once it is shown, a duplicate of the first would be too.
    const send = async (text) => {
      await page.fill("#name", "Live");
      await page.fill("#message", text);
      const answered = page.waitForResponse((r) => r.url().endsWith("/send-message"));
      await page.click("#send");
      check((await answered).status() === 200, `the page sends ${JSON.stringify(text)}`);
      await page.locator("#send:enabled").waitFor();
    };
    const live = [
      ["Live", "A live message after the history"],
      ["Live", "And a second one, as a barrier"],
    ];
    await send(live[0][1]);
    await send(live[1][1]);
    await showsMore(page, expected.length + 1);
    await page.waitForFunction(
      (text) => [...document.querySelectorAll("#messages .text")].some((t) => t.textContent === text),
      live[1][1],
    );
    shown = await shownIn(page);
    check(same(shown, [...expected, ...live]), `the live messages show once each, after the history (${describe(shown)})`);

    // Away and back: the room is entered afresh, and its newest page now ends with the live
    // messages, from the archive, each once.
    await page.fill("form.switch input[name=room]", "elsewhere");
    await page.click("form.switch button");
    await page.waitForFunction(() => document.getElementById("room-name").textContent === "elsewhere");
    await page.locator("#empty").waitFor();
    check((await shownIn(page)).length === 0, "another room starts empty: it has no history");
    await page.fill("form.switch input[name=room]", room);
    await page.click("form.switch button");
    await showsMore(page, 0);
    shown = await shownIn(page);
    check(
      same(shown, [...expected, ...live].slice(-PAGE)),
      `back in #${room}, its latest ${PAGE} messages end with the live ones, once each (${describe(shown)})`,
    );
  }

  check(problems.length === 0, `no dialogs or script errors${problems.length ? ": " + problems.join("; ") : ""}`);
} catch (err) {
  console.error(err.stack || String(err));
  for (const problem of problems) console.error(problem);
  process.exitCode = 1;
} finally {
  await browser.close();
}
