// The house chat page: one EventSource for the room, fetch POST to send.
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

  let source = null;
  let retryDelay = 1000;
  // The room's stream; the room is a path segment, so `/` and `?` in it are encoded. A room
  // switch keeps this stream (and its URL's room, `streamRoom`): the server moves it.
  const streamRoom = room;
  const streamUrl = `/rooms/${encodeURIComponent(room)}/source`;
  // The open stream's id, its first event: the right to move it to another room.
  let streamId = null;

  function connect() {
    setState(source ? "reconnecting" : "connecting");
    source = new EventSource(streamUrl);
    source.onopen = () => {
      retryDelay = 1000;
      setState("live");
    };
    source.onmessage = (event) => {
      let chat;
      try {
        chat = JSON.parse(event.data);
      } catch {
        return;
      }
      if (chat && typeof chat.name === "string" && typeof chat.message === "string") {
        addMessage(chat.name, chat.message);
      }
    };
    source.addEventListener("house-stream", (event) => {
      streamId = event.data;
      // A reconnected stream starts in the URL's room: move it back to the one shown.
      if (room !== streamRoom) moveStream(streamRoom, room).catch(() => {});
    });
    // The server says so when this stream missed events (it had to drop its history).
    source.addEventListener("reset", () => addNotice("Some messages were missed while you were away."));
    source.onerror = () => {
      if (source.readyState === EventSource.CONNECTING) {
        // The browser reconnects by itself (and resumes with Last-Event-ID).
        setState("reconnecting");
      } else {
        // Closed for good: the server answered something other than a stream.
        source.close();
        explainRefusal();
      }
    };
  }

  // EventSource hides the status and body of a refused stream; ask once more to show why,
  // then try again later (a 503 at the connection cap is temporary).
  async function explainRefusal() {
    setState("reconnecting");
    const controller = new AbortController();
    try {
      const response = await fetch(streamUrl, {
        signal: controller.signal,
        headers: { Accept: "text/event-stream" },
      });
      if (response.ok) {
        controller.abort(); // a stream after all: the retry below reconnects properly
      } else {
        const detail = describe(await response.text().catch(() => ""), response.status);
        setError("form", `Cannot join #${room}: ${detail}`);
        if (response.status === 400) {
          setState("offline", "offline");
          return; // retrying cannot fix a bad room name
        }
      }
    } catch {
      // Unreachable; the retry below covers it.
    }
    setTimeout(connect, retryDelay);
    retryDelay = Math.min(retryDelay * 2, 30000);
  }

  // Switching rooms -------------------------------------------------------------

  // Moves the open stream from room `from` to room `to`; the server answers once it has.
  async function moveStream(from, to) {
    const body = new URLSearchParams({ stream: streamId, from, to });
    const response = await fetch("/rooms/switch", { method: "POST", body });
    if (!response.ok) throw new Error(`switch answered ${response.status}`);
  }

  // The switch form moves this page's stream to the new room, keeping the one connection; if
  // that cannot be done (no stream yet, a room the server refuses), it loads the room's page.
  const switchForm = document.querySelector("form.switch");
  switchForm.addEventListener("submit", async (event) => {
    const to = switchForm.elements.room.value.trim();
    if (!streamId || !to || to === room) return;
    event.preventDefault();
    try {
      await moveStream(room, to);
    } catch {
      switchForm.submit();
      return;
    }
    room = to;
    showRoom();
    history.pushState(null, "", `/index?room=${encodeURIComponent(room)}`);
    switchForm.elements.room.value = "";
    list.replaceChildren();
    $("empty").hidden = false;
    clearErrors();
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
    const item = el("li", "msg");
    if (name === nameInput.value.trim()) item.classList.add("mine");
    item.style.setProperty("--hue", hue(name));
    const avatar = el("span", "avatar", [...name][0]?.toUpperCase() || "?");
    avatar.setAttribute("aria-hidden", "true");
    const bubble = el("div", "bubble");
    const meta = el("div", "meta");
    meta.append(el("span", "who", name));
    const now = new Date();
    const time = el("time", "when", now.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }));
    time.dateTime = now.toISOString();
    meta.append(time);
    bubble.append(meta, el("p", "text", text));
    item.append(avatar, bubble);
    append(item);
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
  connect();
})();
