// The house chat page: one stream shared by all its tabs (house.js), fetch POST to send.
// User data only ever reaches the page through textContent, never innerHTML.
"use strict";

(() => {
  let room = new URLSearchParams(location.search).get("room") || "lobby";
  const $ = (id) => document.getElementById(id);
  const feed = $("feed");
  const list = $("messages");
  const form = $("composer");
  const nameInput = $("name");
  const messageInput = $("message");
  const sendButton = $("send");

  function showRoom() {
    $("room-name").textContent = room;
    document.title = `#${room} · house chat`;
  }
  showRoom();

  // The server remembers the name last sent with, in this visitor's session.
  async function prefillName() {
    try {
      const response = await fetch("/me");
      const me = response.ok ? await response.json() : null;
      if (typeof me?.name === "string" && !nameInput.value) nameInput.value = me.name;
    } catch {
      // No name to offer; the visitor types one.
    }
    nameInput.dataset.ready = "true";
    (nameInput.value ? messageInput : nameInput).focus();
  }

  // Connection state ---------------------------------------------------------

  function setState(state, text) {
    $("status").dataset.state = state;
    $("status-text").textContent = text || state;
  }

  // Every tab of this page shares one stream (house.js, served at /house.js): one tab holds
  // the EventSource, and the room this tab shows, and its presence channel, are joined to that
  // stream. Events name their room, so each tab shows only its own.
  const roomUrl = (name, what) => `/rooms/${encodeURIComponent(name)}/${what}`;
  const PRESENCE = "/presence";
  // house.js's join and leave for a channel: `ROOM` or `ROOM/presence`.
  const change = (what) => (stream, channel, lastEventId) => {
    const presence = channel.endsWith(PRESENCE);
    const body = new URLSearchParams({ stream, presence });
    if (lastEventId) body.set("last_event_id", lastEventId);
    return fetch(roomUrl(presence ? channel.slice(0, -PRESENCE.length) : channel, what), {
      method: "POST",
      body,
    });
  };
  let refused = false;
  const tabs = house.connect("/rooms/source", {
    join: change("join"),
    leave: change("leave"),
    events: ["join", "leave"],
    channelOf(event) {
      try {
        const data = JSON.parse(event.data);
        if (event.type === "join" || event.type === "leave") return `${data.channel}${PRESENCE}`;
        return typeof data.room === "string" ? data.room : undefined;
      } catch {
        return undefined;
      }
    },
    // The shared stream's own channel carries nothing: what it missed comes back through the
    // joins (with the last event id), so a takeover does not report a gap for it.
    resume: false,
    onState: (state) => refused || setState(state),
  });

  tabs.addEventListener("message", (event) => {
    let chat;
    try {
      chat = JSON.parse(event.data);
    } catch {
      return;
    }
    if (chat?.room === room && typeof chat.name === "string" && typeof chat.message === "string") {
      // A message published just as the room was entered may come in the archive's first page
      // before it comes live: show it once.
      if (event.lastEventId) {
        if (shownIds.has(event.lastEventId)) return;
        shownIds.add(event.lastEventId);
      }
      addMessage(chat.name, chat.message);
    }
  });
  // The server says so when the stream missed events (it had to drop its history).
  tabs.addEventListener("reset", () => addNotice("Some messages were missed while you were away."));

  // Who is online: presence counts streams, and all tabs of a browser share one, so a person
  // counts once however many tabs they have open.
  let presenceSeen = false;
  function showOnline(count) {
    const online = $("online");
    online.dataset.count = count;
    online.textContent = `${count} online`;
    online.hidden = false;
  }
  function onPresence(event) {
    let presence;
    try {
      presence = JSON.parse(event.data);
    } catch {
      return;
    }
    if (presence?.channel === room && Number.isInteger(presence.count)) {
      presenceSeen = true;
      showOnline(presence.count);
    }
  }
  tabs.addEventListener("join", onPresence);
  tabs.addEventListener("leave", onPresence);

  // Joins room `to` (its presence first, so this stream's own arrival is counted), then asks
  // the count once: presence events only say when it changes. An event that arrives after the
  // question is newer than its answer.
  async function enter(to) {
    await tabs.subscribe(`${to}${PRESENCE}`);
    await tabs.subscribe(to);
    // Joined first, so nothing falls between the archive's newest and the live messages.
    loadOlder(to);
    presenceSeen = false;
    const response = await fetch(roomUrl(to, "online"));
    const online = response.ok ? await response.json() : null;
    if (room === to && !presenceSeen && Number.isInteger(online?.count)) showOnline(online.count);
  }

  function leave(from) {
    tabs.unsubscribe(from);
    tabs.unsubscribe(`${from}${PRESENCE}`);
  }

  // A room the server refuses (a name too long, say): say why; retrying cannot fix it.
  function explainRefusal(err, to) {
    if (room !== to || !(err?.status >= 400 && err.status < 500 && err.status !== 404)) return;
    refused = true;
    setError("form", `Cannot join #${to}: ${describe(err.detail || "", err.status)}`);
    setState("offline", "offline");
  }

  function enterOrExplain(to) {
    enter(to).catch((err) => explainRefusal(err, to));
  }

  // Switching rooms -------------------------------------------------------------

  // The switch form moves this tab to another room on the same shared stream: the old room is
  // left (when no other tab shows it) and the new one joined, without a new connection.
  const switchForm = document.querySelector("form.switch");
  switchForm.addEventListener("submit", (event) => {
    const to = switchForm.elements.room.value.trim();
    if (!to || to === room) return;
    event.preventDefault();
    const from = room;
    room = to;
    refused = false;
    setState(tabs.state);
    showRoom();
    history.pushState(null, "", `/index?room=${encodeURIComponent(room)}`);
    switchForm.elements.room.value = "";
    list.replaceChildren();
    resetArchive();
    $("empty").hidden = false;
    $("online").hidden = true;
    clearErrors();
    leave(from);
    enterOrExplain(to);
  });

  // Older messages ---------------------------------------------------------------

  // With the chat's archive on (the default; `--no-archive` turns it off), entering a room
  // shows its latest messages and scrolling to the top loads the ones before, a page at a time
  // (newest first from `/rooms/NAME/messages`). A message seen live is shown once: the archive
  // names its event id. Without an archive the server answers 404 and the room starts empty.
  const PAGE = 50;
  const shownIds = new Set();
  let oldestId = null; // the archive id of the oldest message shown
  let archiveDone = false; // no archive, or nothing older
  let loading = false;
  // Bumped on every room change, so an answer asked for before it is dropped and does not hold
  // up the new room's first page (switching a → b → a quickly included).
  let generation = 0;

  function resetArchive() {
    shownIds.clear();
    oldestId = null;
    archiveDone = false;
    loading = false;
    generation += 1;
  }

  async function loadOlder(forRoom) {
    if (loading || archiveDone || forRoom !== room) return;
    loading = true;
    const asked = generation;
    try {
      const query = new URLSearchParams({ limit: PAGE });
      if (oldestId !== null) query.set("before", oldestId);
      const response = await fetch(`${roomUrl(forRoom, "messages")}?${query}`);
      if (asked !== generation) return;
      if (!response.ok) {
        archiveDone = true;
        return;
      }
      const page = await response.json();
      if (asked !== generation) return;
      const messages = Array.isArray(page?.messages) ? page.messages : [];
      if (messages.length < PAGE) archiveDone = true;
      prependArchived(messages);
    } catch {
      // Offline for a moment: the next scroll to the top asks again.
    } finally {
      if (asked === generation) loading = false;
    }
  }

  // `messages` newest first: each goes above what is shown, keeping the view where it was.
  function prependArchived(messages) {
    const before = feed.scrollHeight - feed.scrollTop;
    const firstLoad = oldestId === null;
    for (const m of messages) {
      if (!Number.isInteger(m?.id) || typeof m.name !== "string" || typeof m.message !== "string") continue;
      oldestId = oldestId === null ? m.id : Math.min(oldestId, m.id);
      if (m.event_id && shownIds.has(m.event_id)) continue;
      if (m.event_id) shownIds.add(m.event_id);
      list.prepend(messageItem(m.name, m.message, null));
    }
    if (list.children.length) $("empty").hidden = true;
    feed.scrollTop = firstLoad ? feed.scrollHeight : feed.scrollHeight - before;
    // A page that does not fill a tall window cannot be scrolled to ask for the next one.
    if (!archiveDone && feed.scrollHeight <= feed.clientHeight) setTimeout(() => loadOlder(room));
  }

  feed.addEventListener("scroll", () => {
    if (feed.scrollTop < 40) loadOlder(room);
  });

  // Messages -------------------------------------------------------------------

  function nearBottom() {
    return feed.scrollHeight - feed.scrollTop - feed.clientHeight < 80;
  }

  function append(item) {
    const stick = nearBottom();
    list.append(item);
    $("empty").hidden = true;
    if (stick) feed.scrollTop = feed.scrollHeight;
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // A stable hue per name, so people are easy to tell apart.
  function hue(name) {
    let h = 0;
    for (const c of name) h = (h * 31 + c.codePointAt(0)) % 360;
    return h;
  }

  function addMessage(name, text) {
    append(messageItem(name, text, new Date()));
  }

  // A message's list item; `when` is when it arrived (unknown for an archived one).
  function messageItem(name, text, when) {
    const item = el("li", "msg");
    if (name === nameInput.value.trim()) item.classList.add("mine");
    item.style.setProperty("--hue", hue(name));
    const avatar = el("span", "avatar", [...name][0]?.toUpperCase() || "?");
    avatar.setAttribute("aria-hidden", "true");
    const bubble = el("div", "bubble");
    const meta = el("div", "meta");
    meta.append(el("span", "who", name));
    if (when) {
      const time = el("time", "when", when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }));
      time.dateTime = when.toISOString();
      meta.append(time);
    }
    bubble.append(meta, el("p", "text", text));
    item.append(avatar, bubble);
    return item;
  }

  function addNotice(text) {
    append(el("li", "notice", text));
  }

  // Sending --------------------------------------------------------------------

  // "400 Bad Request: parameter `message` must be ..." → "parameter `message` must be ..."
  function describe(body, status) {
    const text = body.trim().replace(/^\d{3}[^:]*:\s*/, "");
    return text || `the server answered ${status}`;
  }

  function setError(field, text) {
    const target = $(`${field}-error`) || $("form-error");
    target.textContent = text;
    const input = $(field);
    if (input && input.tagName === "INPUT") input.setAttribute("aria-invalid", text ? "true" : "false");
  }

  function clearErrors() {
    clearInterval(countdown);
    for (const field of ["name", "message", "form"]) setError(field, "");
  }

  // "429 Too Many Requests: too many `send_message` requests (at most 5 per 10 s); retry in 2 s"
  // → "You are sending too fast (at most 5 messages per 10 s). Your message is kept: try again
  // in 2 s.", counting down.
  let countdown = null;
  function explainTooFast(body, retryAfter) {
    const limit = body.match(/\(at most (\d+) per ([^)]+)\)/);
    const rule = limit ? ` (at most ${limit[1]} messages per ${limit[2]})` : "";
    let left = Math.max(1, Number(retryAfter) || 1);
    const show = () =>
      setError("form", `You are sending too fast${rule}. Your message is kept: try again in ${left} s.`);
    show();
    countdown = setInterval(() => {
      left -= 1;
      if (left > 0) {
        show();
      } else {
        clearInterval(countdown);
        setError("form", "");
      }
    }, 1000);
  }

  for (const input of [nameInput, messageInput]) {
    input.addEventListener("input", () => setError(input.id, ""));
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors();
    const name = nameInput.value.trim();
    const body = new URLSearchParams({ room, name, message: messageInput.value });
    sendButton.disabled = true;
    try {
      const response = await fetch("/send-message", { method: "POST", body });
      if (response.ok) {
        messageInput.value = "";
      } else if (response.status === 429) {
        explainTooFast(await response.text(), response.headers.get("Retry-After"));
      } else {
        const detail = describe(await response.text(), response.status);
        // The server names the parameter that broke a rule in backticks.
        const param = detail.match(/`([^`]+)`/)?.[1];
        setError(param === "name" || param === "message" ? param : "form", detail);
      }
    } catch {
      setError("form", "Could not reach the server. Is it running?");
    } finally {
      sendButton.disabled = false;
      messageInput.focus();
    }
  });

  prefillName();
  enterOrExplain(room);
})();
