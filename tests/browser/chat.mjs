// Drives the chat page in headless Chromium: two people in one room.
//
//   node tests/browser/chat.mjs http://127.0.0.1:PORT SCREENSHOT.png
//
// Run by tests/chat_browser.rs (which starts the server); exits non-zero on the first failed
// check. CHROMIUM overrides the browser (default /usr/bin/chromium, Debian's package).
import { check, launchChromium } from "./launch.mjs";

const [base, screenshot] = process.argv.slice(2);
if (!base || !screenshot) {
  console.error("usage: node chat.mjs BASE_URL SCREENSHOT.png");
  process.exit(2);
}

const TIMEOUT = 10_000;
// Each run has a server of its own, so the room can have the name a person would see first.
const room = "lobby";

const browser = await launchChromium();

const problems = [];

async function open(who, path, state = "live", context = null) {
  // A context each: two people with their own storage and cookies, like two browsers. The same
  // context again is another tab of the same person.
  context ??= await browser.newContext({ viewport: { width: 900, height: 640 }, deviceScaleFactor: 1 });
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT);
  page.on("dialog", (dialog) => {
    problems.push(`${who}: a dialog opened (${dialog.message()}): the page ran injected code`);
    dialog.dismiss();
  });
  page.on("pageerror", (err) => problems.push(`${who}: script error: ${err.message}`));
  await page.goto(`${base}${path}`);
  await page.locator(`#status[data-state=${state}]`).waitFor();
  return page;
}

async function send(page, name, message) {
  await page.fill("#name", name);
  await page.fill("#message", message);
  const answered = page.waitForResponse((r) => r.url().endsWith("/send-message"));
  await page.click("#send");
  const status = (await answered).status();
  // The page re-enables the button once it has handled the answer (cleared the box or
  // shown the error); checks before that would race it.
  await page.locator("#send:enabled").waitFor();
  return status;
}

/// Waits until `page` shows a message from `name` with exactly `text`.
async function received(page, name, text) {
  await page.waitForFunction(
    ([name, text]) =>
      [...document.querySelectorAll("#messages .msg")].some(
        (m) => m.querySelector(".who")?.textContent === name && m.querySelector(".text")?.textContent === text,
      ),
    [name, text],
    { timeout: TIMEOUT },
  );
  return true;
}

try {
  // `/index` without a room is the lobby.
  const ann = await open("ann", "/index");
  const bob = await open("bob", `/index?room=${room}`);
  check(true, `both pages live in #${room}`);
  check((await ann.textContent("#room-name")) === room, "the page shows its room");

  // A message from one page appears in the other (and in its own).
  check((await send(ann, "Ann", "Hi Bob, are you there?")) === 200, "ann's message is accepted");
  check(await received(bob, "Ann", "Hi Bob, are you there?"), "bob receives ann's message");
  check(await received(ann, "Ann", "Hi Bob, are you there?"), "ann sees her own message");

  // HTML in a message is shown as text and creates no element.
  const injection = "<img src=x onerror=alert(1)>";
  check((await send(bob, "Bob", injection)) === 200, "bob's HTML-looking message is accepted");
  check(await received(ann, "Bob", injection), "ann sees the HTML literally");
  for (const [who, page] of [["ann", ann], ["bob", bob]]) {
    const images = await page.locator("#messages img").count();
    check(images === 0, `no element was created from the message in ${who}'s page`);
  }

  // A rule violation is explained next to the field that broke it, and nothing is sent.
  check((await send(ann, "Ann", "hey")) === 400, "a 3-character message is refused");
  const messageError = await ann.textContent("#message-error");
  check(
    messageError === "parameter `message` must be at least 5 characters (got 3)",
    `the explanation is shown under the message field (${JSON.stringify(messageError)})`,
  );
  check((await ann.getAttribute("#message", "aria-invalid")) === "true", "the message field is marked invalid");
  check((await ann.textContent("#name-error")) === "", "the name field has no error");
  check((await send(ann, "", "a message with no name")) === 400, "an empty name is refused");
  const nameError = await ann.textContent("#name-error");
  check(nameError.includes("`name`"), `the explanation is shown under the name field (${JSON.stringify(nameError)})`);

  // A little conversation for the screenshot.
  check((await send(bob, "Bob", "Sorry, testing something. Hi Ann!")) === 200, "bob replies");
  check((await send(ann, "Ann", "No worries. This chat works nicely, and it updates live.")) === 200, "ann replies");
  check((await send(bob, "Bob", "Messages arrive instantly over server-sent events.")) === 200, "bob again");
  await received(ann, "Bob", "Messages arrive instantly over server-sent events.");
  await ann.fill("#message", "");
  await ann.fill("#name", "Ann");
  await ann.locator("#message").focus();
  await ann.evaluate(() => document.getElementById("name-error").replaceChildren());
  await ann.screenshot({ path: screenshot });
  console.log(`ok: screenshot saved to ${screenshot}`);

  // Phone width: the composer and messages still fit without sideways scrolling.
  await bob.setViewportSize({ width: 375, height: 700 });
  const overflow = await bob.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(overflow <= 0, `nothing overflows at phone width (${overflow}px)`);
  if (process.env.PHONE_SCREENSHOT) await bob.screenshot({ path: process.env.PHONE_SCREENSHOT });

  // The server remembers the name each person last sent with (in their session), and a new
  // tab pre-fills it; someone else's page starts empty.
  const nameIn = async (page) => {
    await page.locator("#name[data-ready=true]").waitFor();
    return page.inputValue("#name");
  };
  const annAgain = await open("ann", `/index?room=${room}`, "live", ann.context());
  check((await nameIn(annAgain)) === "Ann", "a new tab of ann's pre-fills her name");
  check((await send(annAgain, "Annie", "Call me Annie from now on.")) === 200, "ann changes her name");
  const annThird = await open("ann", `/index?room=${room}`, "live", ann.context());
  check((await nameIn(annThird)) === "Annie", "the changed name is the one remembered");
  const stranger = await open("dee", `/index?room=${room}`);
  check((await nameIn(stranger)) === "", "a stranger's page has no name");

  // Sending too fast: past 5 messages per 10 s the server answers 429, and the page says why
  // and how long to wait, keeping the message.
  let status = 200;
  for (let i = 0; i < 8 && status === 200; i++) {
    status = await send(bob, "Bob", `Message number ${i + 1} in a hurry`);
  }
  check(status === 429, "bob is slowed down after a burst of messages");
  const slowDown = await bob.textContent("#form-error");
  check(
    /^You are sending too fast \(at most 5 messages per 10 s\)\. Your message is kept: try again in [12] s\.$/.test(slowDown),
    `the wait is explained (${JSON.stringify(slowDown)})`,
  );
  check((await bob.inputValue("#message")).endsWith("in a hurry"), "bob's message is kept");

  // Switching rooms keeps the page's one stream: the server moves it (by the id the stream
  // announced first) from the old room to the new. Each EventSource the page opens is counted.
  const counted = await browser.newContext({ viewport: { width: 900, height: 640 } });
  await counted.addInitScript(() => {
    const Original = window.EventSource;
    window.__eventSources = 0;
    window.EventSource = function (...args) {
      window.__eventSources += 1;
      return new Original(...args);
    };
    window.EventSource.prototype = Original.prototype;
    Object.assign(window.EventSource, { CONNECTING: 0, OPEN: 1, CLOSED: 2 });
  });
  const eve = await open("eve", "/index", "live", counted);
  const fay = await open("fay", "/index?room=kitchen");
  const gus = await open("gus", "/index");
  await eve.waitForFunction(() => window.__eventSources === 1);
  await eve.fill("form.switch input[name=room]", "kitchen");
  const switched = eve.waitForResponse((r) => r.url().endsWith("/rooms/kitchen/join"));
  await eve.click("form.switch button");
  check((await switched).status() === 200, "eve's page asks the server to join the new room to its stream");
  await eve.waitForFunction(() => document.getElementById("room-name").textContent === "kitchen");
  check(new URL(eve.url()).search === "?room=kitchen", "the page's address names the new room");
  check((await send(fay, "Fay", "Welcome to the kitchen!")) === 200, "fay writes in the kitchen");
  check(await received(eve, "Fay", "Welcome to the kitchen!"), "eve receives the new room's message");
  // The lobby message goes out before the second kitchen one: had eve still been in the lobby,
  // she would have it by the time she has the second.
  check((await send(gus, "Gus", "Only for the lobby")) === 200, "gus writes in the lobby");
  check(await received(gus, "Gus", "Only for the lobby"), "the lobby gets its message");
  check((await send(fay, "Fay", "Second kitchen message")) === 200, "fay writes again");
  check(await received(eve, "Fay", "Second kitchen message"), "eve receives it");
  const lobbyInKitchen = await eve.evaluate(() =>
    [...document.querySelectorAll("#messages .text")].some((t) => t.textContent === "Only for the lobby"),
  );
  check(!lobbyInKitchen, "eve no longer receives the old room's messages");
  check(
    (await eve.evaluate(() => window.__eventSources)) === 1 &&
      (await eve.getAttribute("#status", "data-state")) === "live",
    "the switched page gets the new room's messages on the same connection",
  );
  await counted.close();

  // Presence: each browser counts once, however many tabs it has open in the room.
  const online = async (page, count) => {
    await page.locator(`#online[data-count="${count}"]`).waitFor();
    return (await page.textContent("#online")) === `${count} online`;
  };
  const hal = await open("hal", "/index?room=porch");
  check(await online(hal, 1), "hal alone on the porch sees 1 online");
  const ivy = await open("ivy", "/index?room=porch");
  check(await online(ivy, 2), "ivy, in another browser, sees 2 online");
  check(await online(hal, 2), "hal sees ivy arrive: 2 online");
  const halAgain = await open("hal", "/index?room=porch", "live", hal.context());
  check(await online(halAgain, 2), "a second tab of hal's still counts hal once: 2 online");
  const asked = await (await fetch(`${base}/rooms/porch/online`)).json();
  check(asked.count === 2, `the server counts two streams in the room (${JSON.stringify(asked)})`);
  await ivy.context().close();
  check(await online(hal, 1), "ivy leaves and hal sees 1 online");
  check(await online(halAgain, 1), "so does hal's second tab");

  // A room name the server refuses: the page says why instead of retrying forever.
  const lost = await open("cy", "/index?room=seventeen-letters", "offline");
  const roomError = await lost.textContent("#form-error");
  check(
    roomError === "Cannot join #seventeen-letters: parameter `room` must be at most 16 characters (got 17)",
    `a refused room is explained (${JSON.stringify(roomError)})`,
  );

  check(problems.length === 0, `no dialogs or script errors${problems.length ? ": " + problems.join("; ") : ""}`);
} catch (err) {
  console.error(err.stack || String(err));
  for (const problem of problems) console.error(problem);
  process.exitCode = 1;
} finally {
  await browser.close();
}
