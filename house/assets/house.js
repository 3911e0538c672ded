// house.js: one Server-Sent-Events connection shared by every tab of an origin.
//
// A browser allows about 6 HTTP/1.1 connections per origin, so a user with many tabs of an
// SSE page starves. With house.js one tab per origin and stream URL (the "holder") keeps the
// EventSource; the others get its events over a BroadcastChannel. Tabs subscribe to channels;
// the holder counts, per channel, the tabs that want it, joins the channel on the shared
// stream when the first tab wants it and leaves it when the last one stops wanting it or
// closes (through the app's join/leave endpoints, which call `hub.join` / `hub.leave`). When
// the holder closes, the next tab takes over: it opens the stream again, re-joins every
// channel the tabs want resuming from the last event id it saw, and every tab drops an event
// id it already delivered, so nothing is lost and nothing repeats.
//
//   <script src="/house.js"></script>
//   <script>
//     const tab = house.connect("/stream", {      // a joinable stream (`Subscribe::joinable`)
//       joinUrl: "/join", leaveUrl: "/leave",     // POST stream=ID&channel=C[&last_event_id=X]
//       channelOf: (event) => JSON.parse(event.data).room, // deliver only to tabs that want it
//       events: ["join", "leave"],                // named events to carry besides messages
//       onState: (state) => console.log(state),   // "connecting" | "live" | "reconnecting"
//     });
//     tab.addEventListener("message", (event) => console.log(event.data, event.channel));
//     await tab.subscribe("lobby");               // resolves once the stream has joined it
//     tab.unsubscribe("lobby");
//     tab.close();                                // also done when the page goes away
//   </script>
//
// Options: `join(streamId, channel, lastEventId)` and `leave(streamId, channel)` replace the
// default POSTs (return a fetch Response or a promise of one; a non-2xx answer refuses the
// subscription, and `subscribe` rejects with an Error carrying `status` and `detail`).
// `resume: false` opens the stream without `?last_event_id=` on a takeover (for a stream
// whose own channel carries no events; its joins still resume). `withCredentials: true` for a
// stream on another origin that needs cookies. `name` overrides the election's name.
//
// The holder is elected with Web Locks (`navigator.locks`, secure contexts only: https or
// localhost); without them, tabs elect the holder over the BroadcastChannel (heartbeats, the
// lowest tab id wins a claim), and a tab that vanishes without its `pagehide` keeps its
// channels joined until the next takeover. A classic script (not a module) so that a page on
// another origin can load it without CORS, and older pages with plain <script> tags can too.
// It never touches the page's DOM.
"use strict";

(function (global) {
  /// Event ids each tab remembers, to drop one delivered already.
  const SEEN_LIMIT = 4096;
  /// Without Web Locks: how often the holder says it is alive (a hidden tab runs timers about
  /// once a second, so no faster).
  const BEAT_MS = 1000;
  /// Without Web Locks: silence after which the holder counts as gone.
  const HOLDER_TIMEOUT_MS = 3500;
  /// Without Web Locks: how long a claim waits for a better (lower) one.
  const CLAIM_MS = 100;
  /// A refused stream is opened again after this, doubling up to RETRY_MAX_MS.
  const RETRY_MS = 1000;
  const RETRY_MAX_MS = 30000;

  function randomId() {
    const bytes = new Uint8Array(8);
    crypto.getRandomValues(bytes);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function withParam(url, name, value) {
    const u = new URL(url);
    u.searchParams.set(name, value);
    return u.href;
  }

  async function post(url, params, credentials) {
    const body = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null) body.set(k, v);
    return fetch(url, { method: "POST", body, credentials });
  }

  class Tab extends EventTarget {
    constructor(url, options = {}) {
      super();
      this.url = new URL(url, location.href).href;
      this.options = options;
      this.id = randomId();
      this.state = "connecting";
      this.holding = false;
      this.closed = false;
      this.lastEventId = undefined;
      this.wanted = new Set(); // this tab's channels
      this.joinedHere = new Set(); // channels the holder said are joined
      this.waiters = new Map(); // channel → [{ resolve, reject }]
      this.types = new Set(["message", "reset", ...(options.events || [])]);
      this.seen = new Set();
      this.seenOrder = [];
      this.credentials = options.withCredentials ? "include" : "same-origin";
      const name = options.name || `house:${this.url}`;
      this.name = name;
      this.bus = typeof BroadcastChannel === "function" ? new BroadcastChannel(name) : null;
      if (this.bus) this.bus.onmessage = (event) => this.onBus(event.data);
      this.onPageHide = () => this.close();
      addEventListener("pagehide", this.onPageHide);
      if (!this.bus) {
        this.hold(); // nobody to share with
      } else if (global.navigator.locks) {
        // This tab's own lock, held while it lives: the holder waits on it to notice the tab
        // vanish. Nothing is said before it is held, so the holder never waits too early.
        navigator.locks.request(`${name}#${this.id}`, () =>
          new Promise((release) => {
            this.releaseTab = release;
            this.start();
            // Queued until the holder before this one lets go.
            navigator.locks.request(name, () =>
              this.closed ? undefined : new Promise((releaseHold) => {
                this.releaseHold = releaseHold;
                this.hold();
              }),
            );
          }),
        );
      } else {
        this.fallback = { beatAt: 0, claiming: false, best: null, sawHolder: false };
        this.start();
        this.ticker = setInterval(() => this.tick(), BEAT_MS);
        // A holder answers `hello` at once; else claim after a short wait.
        setTimeout(() => this.tick(true), CLAIM_MS);
      }
    }

    // The tab's API ------------------------------------------------------------------------

    /// Wants `channel`; resolves once the shared stream has joined it (rejects if refused).
    subscribe(channel) {
      const done = new Promise((resolve, reject) => {
        const list = this.waiters.get(channel) || [];
        list.push({ resolve, reject });
        this.waiters.set(channel, list);
      });
      if (!this.wanted.has(channel)) {
        this.wanted.add(channel);
        if (this.holding) this.ref(this.id, channel, false);
        else if (this.started) this.send({ t: "want", tab: this.id, channel });
      } else if (this.joinedHere.has(channel)) {
        this.settle(channel, { ok: true });
      }
      return done;
    }

    /// Stops wanting `channel`: its events no longer reach this tab at once.
    unsubscribe(channel) {
      if (!this.wanted.delete(channel)) return;
      this.settle(channel, { ok: false, status: 0, detail: "unsubscribed" });
      if (this.holding) this.unref(this.id, channel);
      else this.send({ t: "unwant", tab: this.id, channel });
    }

    /// Named events (besides messages) reach a tab once some tab listens for them.
    addEventListener(type, listener, options) {
      super.addEventListener(type, listener, options);
      if (!this.types.has(type)) {
        this.types.add(type);
        if (this.holding) this.listen(type);
        else this.send({ t: "type", type });
      }
    }

    /// Whether this tab holds the shared stream.
    get isHolder() {
      return this.holding;
    }

    /// Leaves: its channels are released; a holding tab hands the stream to the next tab.
    close() {
      if (this.closed) return;
      this.send({ t: "bye", tab: this.id, holder: this.holding });
      this.closed = true;
      removeEventListener("pagehide", this.onPageHide);
      clearInterval(this.ticker);
      if (this.source) this.source.close();
      this.holding = false;
      this.releaseHold?.();
      this.releaseTab?.();
      this.bus?.close();
    }

    // Between tabs ---------------------------------------------------------------------------

    start() {
      this.started = true;
      this.send({ t: "hello", tab: this.id });
      if (this.wanted.size) this.send({ t: "wants", tab: this.id, channels: [...this.wanted], resume: false });
      for (const type of this.types) this.send({ t: "type", type });
    }

    send(message) {
      if (this.bus && !this.closed) this.bus.postMessage(message);
    }

    onBus(m) {
      if (this.closed) return;
      const fb = this.fallback;
      switch (m.t) {
        case "event":
          this.receive(m);
          break;
        case "state":
        case "holder":
        case "beat":
          if (fb) {
            fb.beatAt = Date.now();
            fb.sawHolder = true;
            // Two holders (a split election): the higher id steps down.
            if (this.holding && m.tab < this.id) this.unhold();
          }
          if (m.t === "holder") {
            this.joinedHere.clear();
            if (!this.holding) this.send({ t: "wants", tab: this.id, channels: [...this.wanted], resume: true });
          }
          if (m.lastEventId && this.lastEventId === undefined) this.lastEventId = m.lastEventId;
          if (m.state && !this.holding) this.setState(m.state);
          break;
        case "joined":
          if (m.ok) this.joinedHere.add(m.channel);
          else this.joinedHere.delete(m.channel);
          if (this.wanted.has(m.channel)) this.settle(m.channel, m);
          break;
        case "hello":
          if (this.holding) this.send({ t: "state", tab: this.id, state: this.state, lastEventId: this.lastEventId });
          break;
        case "want":
          if (this.holding) {
            this.watch(m.tab);
            this.ref(m.tab, m.channel, false);
          }
          break;
        case "wants":
          if (this.holding) {
            this.watch(m.tab);
            for (const channel of m.channels) this.ref(m.tab, channel, m.resume);
          }
          break;
        case "unwant":
          if (this.holding) this.unref(m.tab, m.channel);
          break;
        case "type":
          this.types.add(m.type);
          if (this.holding) this.listen(m.type);
          break;
        case "bye":
          if (this.holding) this.dropTab(m.tab);
          if (m.holder) {
            this.joinedHere.clear();
            if (!this.holding) this.setState("reconnecting");
            if (fb) {
              fb.beatAt = 0;
              this.claim();
            }
          }
          break;
        case "claim":
          if (!fb) break;
          if (this.holding) this.send({ t: "beat", tab: this.id });
          else if (fb.claiming) fb.best = m.tab < fb.best ? m.tab : fb.best;
          else if (Date.now() - fb.beatAt > HOLDER_TIMEOUT_MS) this.claim();
          break;
      }
    }

    settle(channel, answer) {
      const list = this.waiters.get(channel);
      if (!list) return;
      this.waiters.delete(channel);
      for (const { resolve, reject } of list) {
        if (answer.ok) resolve();
        else reject(Object.assign(new Error(`cannot join ${channel}: ${answer.detail || answer.status}`), answer));
      }
    }

    /// An event from the shared stream: dropped if delivered before, else given to this tab's
    /// listeners when it wants the event's channel.
    receive({ type, data, id }) {
      if (id) {
        if (this.seen.has(id)) return;
        this.seen.add(id);
        this.seenOrder.push(id);
        if (this.seenOrder.length > SEEN_LIMIT) this.seen.delete(this.seenOrder.shift());
        this.lastEventId = id;
      }
      let channel;
      if (this.options.channelOf && type !== "reset") {
        try {
          channel = this.options.channelOf({ type, data, lastEventId: id || "" });
        } catch {
          channel = undefined;
        }
        if (channel !== undefined && !this.wanted.has(channel)) return;
      }
      const event = new MessageEvent(type, { data, lastEventId: id || "" });
      Object.defineProperty(event, "channel", { value: channel });
      this.dispatchEvent(event);
    }

    setState(state) {
      if (state === this.state) return;
      this.state = state;
      if (this.holding) this.send({ t: "state", tab: this.id, state, lastEventId: this.lastEventId });
      this.options.onState?.(state);
    }

    // Without Web Locks: the election ---------------------------------------------------------

    tick(first) {
      const fb = this.fallback;
      if (this.closed) return;
      if (this.holding) this.send({ t: "beat", tab: this.id });
      else if (!fb.claiming && (first ? !fb.sawHolder : Date.now() - fb.beatAt > HOLDER_TIMEOUT_MS)) this.claim();
    }

    claim() {
      const fb = this.fallback;
      if (fb.claiming || this.holding || this.closed) return;
      fb.claiming = true;
      fb.best = this.id;
      fb.sawHolder = false;
      this.send({ t: "claim", tab: this.id });
      setTimeout(() => {
        fb.claiming = false;
        if (this.closed || this.holding) return;
        if (fb.best === this.id && !fb.sawHolder) this.hold();
        else if (!fb.sawHolder) setTimeout(() => this.tick(), HOLDER_TIMEOUT_MS); // the winner may vanish
      }, CLAIM_MS);
    }

    unhold() {
      this.holding = false;
      this.source?.close();
      this.source = null;
      clearTimeout(this.retry);
      this.send({ t: "wants", tab: this.id, channels: [...this.wanted], resume: true });
    }

    // Holding the stream ----------------------------------------------------------------------

    hold() {
      if (this.closed || this.holding) return;
      this.holding = true;
      this.refs = new Map(); // channel → Set of tab ids
      this.joined = new Set(); // joined on the current stream
      this.watched = new Set();
      this.ops = Promise.resolve();
      this.joinFrom = undefined;
      this.retryDelay = RETRY_MS;
      for (const channel of this.wanted) this.ref(this.id, channel, true);
      this.send({ t: "holder", tab: this.id, state: this.state, lastEventId: this.lastEventId });
      this.open();
    }

    open() {
      const resume = this.options.resume !== false && this.lastEventId;
      const url = resume ? withParam(this.url, "last_event_id", this.lastEventId) : this.url;
      this.setState(this.everOpened || this.lastEventId ? "reconnecting" : "connecting");
      const source = new EventSource(url, { withCredentials: !!this.options.withCredentials });
      this.source = source;
      this.streamId = null;
      // An event without an `id:` line keeps the previous one in `lastEventId`.
      this.streamLastId = "";
      this.listening = new Set();
      for (const type of this.types) this.listen(type);
      source.addEventListener("house-stream", (event) => {
        this.streamId = event.data;
        this.joined = new Set();
        // What the stream missed of every channel comes back from the last id any tab saw.
        this.joinFrom = this.lastEventId;
        for (const channel of this.refs.keys()) this.join(channel, this.joinFrom);
      });
      source.onopen = () => {
        this.everOpened = true;
        this.retryDelay = RETRY_MS;
        this.setState("live");
      };
      source.onerror = () => {
        if (source !== this.source) return;
        this.setState("reconnecting");
        if (source.readyState === EventSource.CLOSED) {
          // Refused (not a stream): the browser gives up; try again later.
          this.retry = setTimeout(() => this.holding && this.open(), this.retryDelay);
          this.retryDelay = Math.min(this.retryDelay * 2, RETRY_MAX_MS);
        }
      };
    }

    listen(type) {
      const source = this.source;
      // `open` and `error` are the EventSource's own; `house-stream` is the holder's.
      if (!source || this.listening.has(type) || ["house-stream", "open", "error"].includes(type)) return;
      this.listening.add(type);
      source.addEventListener(type, (event) => {
        if (source !== this.source) return;
        const id = event.lastEventId !== this.streamLastId ? event.lastEventId : "";
        this.streamLastId = event.lastEventId;
        const message = { t: "event", type, data: event.data, id };
        this.send(message);
        this.receive(message);
      });
    }

    /// Tab `tab` wants `channel`: the first want joins it (`resume`: from where the stream
    /// left off, for a want from before a takeover; else only what comes next).
    ref(tab, channel, resume) {
      let tabs = this.refs.get(channel);
      if (!tabs) this.refs.set(channel, (tabs = new Set()));
      const first = tabs.size === 0;
      tabs.add(tab);
      if (first) this.join(channel, resume ? this.joinFrom ?? this.lastEventId : undefined);
      else if (this.joined.has(channel)) this.ack(channel, { ok: true });
    }

    unref(tab, channel) {
      const tabs = this.refs.get(channel);
      if (!tabs || !tabs.delete(tab) || tabs.size) return;
      this.refs.delete(channel);
      if (!this.joined.delete(channel)) return;
      const streamId = this.streamId;
      this.queue(() => this.call("leave", streamId, channel));
    }

    dropTab(tab) {
      for (const channel of [...this.refs.keys()]) this.unref(tab, channel);
    }

    /// With Web Locks, learn when tab `tab` vanishes: its lock frees.
    watch(tab) {
      if (!global.navigator.locks || tab === this.id || this.watched.has(tab)) return;
      this.watched.add(tab);
      navigator.locks.request(`${this.name}#${tab}`, () => {
        if (this.holding) this.dropTab(tab);
      });
    }

    join(channel, lastEventId) {
      const streamId = this.streamId;
      if (!streamId) return; // joined when the stream's id arrives
      this.queue(async () => {
        if (streamId !== this.streamId || !this.refs.has(channel) || this.joined.has(channel)) {
          if (this.joined.has(channel)) this.ack(channel, { ok: true });
          return;
        }
        const answer = await this.call("join", streamId, channel, lastEventId);
        if (streamId !== this.streamId) return; // a new stream joins again
        if (answer.ok) {
          this.joined.add(channel);
          // Nobody wants it any more (unsubscribed while joining).
          if (!this.refs.has(channel)) this.leaveNow(channel);
        }
        this.ack(channel, answer);
      });
    }

    leaveNow(channel) {
      if (!this.joined.delete(channel)) return;
      const streamId = this.streamId;
      this.queue(() => this.call("leave", streamId, channel));
    }

    ack(channel, answer) {
      const message = { t: "joined", channel, ...answer };
      this.send(message);
      this.onBusLocal(message);
    }

    onBusLocal(message) {
      if (message.ok) this.joinedHere.add(message.channel);
      if (this.wanted.has(message.channel)) this.settle(message.channel, message);
    }

    /// One join or leave at a time, in order.
    queue(step) {
      this.ops = this.ops.then(step).catch(() => {});
    }

    /// Calls the app's endpoint; `{ ok, status, detail }`.
    async call(what, streamId, channel, lastEventId) {
      const custom = this.options[what];
      try {
        const response = custom
          ? await custom(streamId, channel, lastEventId)
          : await post(
              new URL(this.options[`${what}Url`] || `/${what}`, this.url).href,
              { stream: streamId, channel, last_event_id: lastEventId },
              this.credentials,
            );
        if (response && typeof response.ok === "boolean" && !response.ok) {
          const detail = await response.text().catch(() => "");
          return { ok: false, status: response.status, detail };
        }
        return { ok: true };
      } catch (err) {
        return { ok: false, status: 0, detail: String(err && err.message) };
      }
    }
  }

  global.house = Object.freeze({
    /// Shares the stream at `url` with every tab of this origin (see the top of this file).
    connect: (url, options) => new Tab(url, options),
  });
})(globalThis);
