// The chat page's client. Plain JavaScript, no libraries, no build step.
//
// What it adds to the server-rendered page:
//   * a WebSocket at /chatsocket that reconnects with capped, jittered exponential backoff and,
//     after every open, catches up through GET /api/messages?after=<highest settled id>;
//   * an outbox kept in localStorage: a message typed while offline is shown as pending, survives
//     a reload and is sent (with a client_id the server de-duplicates on) once the socket is open,
//     one message at a time and oldest first, pausing when the server says "not now";
//   * older history on demand, own messages marked, local times, Enter to send;
//   * who is signed in, from <body data-user-id>: their messages are theirs by user id (a guest's
//     by the client_ids this browser sent, or the name typed), and a socket the server closes
//     because that sign-in ended (4401) is not reopened: the page says so and reloads once.
//
// The only HTML inserted from the server is a message's `html` fragment, parsed in a <template>.
// Everything else is built with textContent.
"use strict";

(() => {
  const doc = document;
  const root = doc.documentElement;
  root.classList.remove("no-js");
  root.classList.add("js");

  const config = doc.body.dataset;
  const SOCKET_PATH = config.socketPath || "/chatsocket";
  const API_MESSAGES = config.apiMessages || "/api/messages";
  // The room this page shows: the socket carries every room of a signed-in user, and a frame
  // names its room; one without (an older server) is general's.
  const ROOM = config.room || "general";
  const MAX_CHARS = Number(config.maxChars) || 2000;
  const CATCH_UP_LIMIT = 200;
  const OLDER_LIMIT = 50;
  const BACKOFF_START_MS = 500;
  const BACKOFF_CAP_MS = 10000;
  const STABLE_AFTER_MS = 5000; // an open this long resets the backoff
  const OFFLINE_AFTER_FAILURES = 3; // show "offline" instead of "reconnecting…" after this many
  const RETRY_DEFAULT_S = 3; // retry delay for storage_unavailable and rate_limited without hint
  const NEAR_BOTTOM_PX = 120;
  const FETCH_TIMEOUT_MS = 15000;
  const ANSWER_TIMEOUT_MS = 10000;
  const OWN_IDS_KEEP = 300;
  // Across server processes a lower id can arrive after a higher one, by up to about this long
  // (the server's broker replay uses the same window): catch-ups start below it.
  const REORDER_WINDOW_MS = 5000;
  const KEYS = {
    outbox: "chat.outbox",
    author: "chat.author",
    own: "chat.ownClientIds",
    signedOutReload: "chat.signedOutReloadAt",
  };
  const RETRYABLE = new Set(["rate_limited", "storage_unavailable"]);
  // Refused because of who sends, not what: the text goes back to the composer to send again.
  const GIVE_BACK = new Set(["name_taken", "sign_in_required"]);
  const CLOSE_REVOKED = 4401; // the server ended this page's sign-in (chat.auth.revocations)
  const SIGNED_OUT_RELOAD_MS = 1500; // long enough to read "You were signed out"
  const RELOAD_GUARD_MS = 30000; // at most one such reload in this long, whatever happens
  const SIGN_IN = { href: "/login?next=/", label: "Sign in" };

  // The signed-in person, or null for a guest. A signed-in client cannot choose its name.
  const me = config.userId
    ? {
        id: Number(config.userId),
        username: config.username || "",
        displayName: config.displayName || config.username || "",
      }
    : null;
  const myUserId = me === null ? null : me.id;

  const inbox = doc.getElementById("inbox");
  const outboxView = doc.getElementById("outbox");
  const scroller = doc.getElementById("scroller");
  // Absent for a guest where guests may only read; the name field is absent when signed in.
  const form = doc.getElementById("messageform");
  const bodyInput = doc.getElementById("message");
  const authorInput = doc.getElementById("author");
  const statusView = doc.getElementById("status");
  const olderButton = doc.getElementById("load-older");
  const noticeView = doc.getElementById("notice");
  const counter = doc.getElementById("counter");
  const formError = doc.getElementById("form-error");

  // ---- storage (may be unavailable or full: the page keeps working without it) ----

  const store = {
    get(key, fallback) {
      try {
        const raw = localStorage.getItem(key);
        return raw === null ? fallback : JSON.parse(raw);
      } catch {
        return fallback;
      }
    },
    set(key, value) {
      try {
        localStorage.setItem(key, JSON.stringify(value));
      } catch {
        // Private mode or quota: the in-page state still works for this visit.
      }
    },
  };

  function newClientId() {
    if (window.crypto && typeof crypto.randomUUID === "function") return crypto.randomUUID();
    const bytes = new Uint8Array(16);
    if (window.crypto && crypto.getRandomValues) crypto.getRandomValues(bytes);
    else for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(Math.random() * 256);
    return "c-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  // The outbox is read from storage on every change, so two tabs do not overwrite each other.
  // Each item remembers who queued it (user_id, null for a guest) and is sent only while that
  // person is signed in here: a guest's text never goes out under an account, nor one person's
  // under another's who signs in on the same browser.
  const outbox = {
    stored() {
      const items = store.get(KEYS.outbox, []);
      return Array.isArray(items) ? items.filter((i) => i && i.client_id && i.body) : [];
    },
    all() {
      return this.stored().filter((i) => (i.user_id ?? null) === myUserId);
    },
    add(item) {
      const others = this.stored().filter((i) => i.client_id !== item.client_id);
      store.set(KEYS.outbox, [...others, item]);
    },
    remove(clientId) {
      const items = this.stored();
      const kept = items.filter((i) => i.client_id !== clientId);
      // Every message carries someone's client_id: write (and wake other tabs) only on a change.
      if (kept.length !== items.length) store.set(KEYS.outbox, kept);
    },
    get(clientId) {
      return this.all().find((i) => i.client_id === clientId);
    },
  };

  const ownClientIds = new Set(store.get(KEYS.own, []));

  function rememberOwn(clientId) {
    ownClientIds.add(clientId);
    const kept = [...ownClientIds].slice(-OWN_IDS_KEEP);
    store.set(KEYS.own, kept);
  }

  // ---- messages in the inbox ----

  function numericId(value) {
    const n = Number(value);
    return Number.isSafeInteger(n) ? n : null;
  }

  function elementId(el) {
    return numericId(el.dataset.id ?? el.id.replace(/^m/, ""));
  }

  function shownMessages() {
    return inbox.querySelectorAll(":scope > .message");
  }

  function highestId() {
    let best = 0;
    for (const el of shownMessages()) {
      const id = elementId(el);
      if (id !== null && id > best) best = id;
    }
    return best;
  }

  // Ids shown within the reorder window, oldest first; older ones raise `settledId`.
  const recentlyShown = [];
  let settledId = highestId(); // what the server rendered into the page is settled

  function settleShown() {
    const cutoff = Date.now() - REORDER_WINDOW_MS;
    while (recentlyShown.length > 0 && recentlyShown[0].at <= cutoff) {
      settledId = Math.max(settledId, recentlyShown.shift().id);
    }
  }

  function noteShown(id) {
    settleShown();
    if (id !== null) recentlyShown.push({ id, at: Date.now() });
  }

  // Where a catch-up starts: the highest id shown long enough ago that nothing lower can still
  // be on its way. Re-fetching the few messages above it is harmless (duplicates are skipped).
  function catchUpStart() {
    settleShown();
    return recentlyShown.length > 0 ? Math.min(settledId, highestId()) : highestId();
  }

  function lowestId() {
    for (const el of shownMessages()) {
      const id = elementId(el);
      if (id !== null) return id;
    }
    return null;
  }

  function chosenName() {
    return authorInput ? authorInput.value.trim() : "";
  }

  // Signed in: mine exactly when my account wrote it, never by name. A guest: what this browser
  // sent (by client_id), or a guest message under the name typed now.
  function isOwn(el, clientId) {
    const authorId = numericId(el.dataset.userId || "none");
    if (me !== null) return authorId === me.id;
    if (authorId !== null) return false;
    const cid = clientId || el.dataset.clientId;
    if (cid && ownClientIds.has(cid)) return true;
    const name = chosenName();
    const author = el.querySelector(".author");
    return name !== "" && author !== null && author.textContent.trim() === name;
  }

  function markOwn(el, clientId) {
    el.classList.toggle("own", isOwn(el, clientId));
  }

  const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "numeric", minute: "2-digit" });
  const dateTimeFormat = new Intl.DateTimeFormat(undefined, {
    month: "short",
    day: "numeric",
    hour: "numeric",
    minute: "2-digit",
  });
  const fullFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "medium" });

  function localizeTimes(el) {
    for (const time of el.querySelectorAll("time[datetime]")) {
      const when = new Date(time.getAttribute("datetime"));
      if (Number.isNaN(when.getTime())) continue;
      const today = new Date().toDateString() === when.toDateString();
      time.textContent = (today ? timeFormat : dateTimeFormat).format(when);
      time.title = fullFormat.format(when);
    }
  }

  function fragmentElement(html) {
    const template = doc.createElement("template");
    template.innerHTML = html;
    const el = template.content.firstElementChild;
    return el && el.classList.contains("message") ? el : null;
  }

  // A message without an html fragment (a client of some other server) is built as text.
  function textElement(message) {
    const el = doc.createElement("div");
    el.className = "message";
    el.id = "m" + message.id;
    el.dataset.id = String(message.id);
    const meta = el.appendChild(doc.createElement("div"));
    meta.className = "meta";
    const author = meta.appendChild(doc.createElement("span"));
    author.className = "author";
    author.textContent = message.author || "anonymous";
    const body = el.appendChild(doc.createElement("div"));
    body.className = "body";
    body.textContent = String(message.body ?? "");
    return el;
  }

  function messageElement(message, clientId) {
    const el = (message.html && fragmentElement(String(message.html))) || textElement(message);
    if (clientId) el.dataset.clientId = clientId;
    const authorId = message.user ? numericId(message.user.id) : null;
    if (authorId !== null) el.dataset.userId = String(authorId);
    markOwn(el, clientId);
    localizeTimes(el);
    return el;
  }

  function isNearBottom() {
    return scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < NEAR_BOTTOM_PX;
  }

  function scrollToBottom() {
    scroller.scrollTop = scroller.scrollHeight;
  }

  // Puts el at its id-ordered place; messages arrive out of order (socket before catch-up).
  function placeInInbox(el) {
    const id = elementId(el);
    if (id === null) {
      inbox.append(el);
      return;
    }
    let after = inbox.lastElementChild;
    while (after !== null) {
      const otherId = after.classList.contains("message") ? elementId(after) : null;
      if (otherId !== null && otherId < id) break;
      after = after.previousElementSibling;
    }
    if (after === null) inbox.prepend(el);
    else after.after(el);
  }

  /** Shows one message object (socket frame or API row). Returns true when it was new. */
  function showMessage(message) {
    if (!message || message.id === undefined || message.id === null) return false;
    const clientId = typeof message.client_id === "string" ? message.client_id : null;
    if (clientId) settle(clientId);
    if (doc.getElementById("m" + message.id)) return false;
    const el = messageElement(message, clientId);
    const follow = isNearBottom() || (clientId !== null && ownClientIds.has(clientId));
    placeInInbox(el);
    noteShown(numericId(message.id));
    if (follow) scrollToBottom();
    return true;
  }

  // ---- the outbox view: pending messages, built with textContent only ----

  function pendingElement(clientId) {
    return outboxView.querySelector(`[data-client-id="${CSS.escape(clientId)}"]`);
  }

  function showPending(item) {
    let el = pendingElement(item.client_id);
    if (el) return el;
    el = doc.createElement("div");
    el.className = "pending-message own";
    el.dataset.clientId = item.client_id;
    const meta = el.appendChild(doc.createElement("div"));
    meta.className = "meta";
    const author = meta.appendChild(doc.createElement("span"));
    author.className = "author";
    author.textContent = me !== null ? me.displayName : item.author || "anonymous";
    const state = meta.appendChild(doc.createElement("span"));
    state.className = "pending-state";
    state.textContent = "sending…";
    const body = el.appendChild(doc.createElement("div"));
    body.className = "body";
    body.textContent = item.body;
    outboxView.append(el);
    scrollToBottom();
    return el;
  }

  function failPending(clientId, detail) {
    const el = pendingElement(clientId);
    if (!el) return;
    el.classList.add("failed");
    el.querySelector(".pending-state").textContent = "not sent";
    let error = el.querySelector(".pending-error");
    if (!error) {
      error = el.appendChild(doc.createElement("div"));
      error.className = "pending-error";
      const text = error.appendChild(doc.createElement("span"));
      text.className = "pending-error-text";
      const edit = error.appendChild(doc.createElement("button"));
      edit.type = "button";
      edit.textContent = "Edit";
      edit.addEventListener("click", () => {
        bodyInput.value = el.querySelector(".body").textContent;
        el.remove();
        updateCounter();
        bodyInput.focus();
      });
      const dismiss = error.appendChild(doc.createElement("button"));
      dismiss.type = "button";
      dismiss.textContent = "Dismiss";
      dismiss.addEventListener("click", () => el.remove());
    }
    error.querySelector(".pending-error-text").textContent = detail;
  }

  // The server has the message with this client_id: it leaves the outbox.
  function settle(clientId) {
    outbox.remove(clientId);
    const el = pendingElement(clientId);
    if (el && !el.classList.contains("failed")) el.remove();
    if (clientId === inFlight) {
      clearInFlight();
      pump();
    }
  }

  // ---- notices ----

  let noticeTimer = null;

  /** Shows `text` (and a link, built with textContent); it goes away after a while unless
   * `persist`. */
  function notify(text, { link = null, persist = false } = {}) {
    noticeView.replaceChildren(text);
    if (link !== null) {
      const anchor = doc.createElement("a");
      anchor.href = link.href;
      anchor.textContent = link.label;
      noticeView.append(" ", anchor);
    }
    noticeView.hidden = false;
    clearTimeout(noticeTimer);
    if (persist) return;
    noticeTimer = setTimeout(() => {
      noticeView.hidden = true;
      noticeView.replaceChildren();
    }, 6000);
  }

  // ---- the socket ----

  let socket = null;
  let signedOut = false; // the server ended this page's sign-in: no more sockets
  let everConnected = false;
  let ready = false; // open and caught up: frames may be sent
  let failures = 0;
  let reconnectTimer = null;
  let stableTimer = null;
  // The outbox is sent one message at a time, oldest first: order is kept, and a refusal for
  // now (rate_limited, storage_unavailable) pauses everything instead of earning more refusals.
  let inFlight = null; // client_id sent on this socket and not answered yet
  let inFlightTimer = null;
  let holdUntil = 0; // no sending before this Date.now()
  let holdTimer = null;

  function setStatus(state, text) {
    statusView.dataset.state = state;
    statusView.textContent = text;
  }

  function socketUrl() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    return `${scheme}//${location.host}${SOCKET_PATH}`;
  }

  function connect() {
    clearTimeout(reconnectTimer);
    reconnectTimer = null;
    if (socket !== null || signedOut) return;
    setStatus("connecting", failures === 0 && !everConnected ? "connecting…" : "reconnecting…");
    let ws;
    try {
      ws = new WebSocket(socketUrl());
    } catch {
      scheduleReconnect();
      return;
    }
    socket = ws;
    ws.addEventListener("open", () => onOpen(ws));
    ws.addEventListener("message", (event) => onFrame(ws, event));
    ws.addEventListener("close", (event) => onClose(ws, event));
    // An error is always followed by close, which does the work.
  }

  function onOpen(ws) {
    if (ws !== socket) return;
    everConnected = true;
    setStatus("connected", "connected");
    stableTimer = setTimeout(() => {
      failures = 0;
    }, STABLE_AFTER_MS);
    // Read synchronously: frames arriving during the catch-up must not move its start.
    catchUp(ws, catchUpStart());
  }

  async function catchUp(ws, after) {
    try {
      let cursor = after;
      for (;;) {
        const page = await fetchMessages({ after: cursor, limit: CATCH_UP_LIMIT });
        if (ws !== socket) return;
        for (const message of page.messages) showMessage(message);
        if (!page.has_newer) break;
        const next = numericId(page.newer_cursor);
        if (next === null || next <= cursor) break;
        cursor = next;
      }
    } catch (error) {
      if (ws !== socket) return;
      // Without the missed messages the page would have a gap: start over.
      console.warn("chat: catch-up failed, reconnecting", error);
      abandonSocket();
      return;
    }
    ready = true;
    pump();
  }

  function onClose(ws, event) {
    if (ws !== socket) return;
    socket = null;
    ready = false;
    clearInFlight();
    clearTimeout(stableTimer);
    if (event.code === CLOSE_REVOKED) onSignedOut();
    else scheduleReconnect();
  }

  // Signed out here or elsewhere, revoked or disabled: a new socket would be refused or open as
  // a guest under a page that still names the person. Stop, say so, and reload once, which
  // shows the page as it now is (the guest view, or the sign-in form).
  function onSignedOut() {
    signedOut = true;
    clearTimeout(reconnectTimer);
    reconnectTimer = null;
    setStatus("offline", "signed out");
    notify("You were signed out.", { link: SIGN_IN, persist: true });
    let last = 0;
    try {
      last = Number(sessionStorage.getItem(KEYS.signedOutReload)) || 0;
      if (Date.now() - last < RELOAD_GUARD_MS) return; // reloaded just now: never loop
      sessionStorage.setItem(KEYS.signedOutReload, String(Date.now()));
    } catch {
      // No sessionStorage: no guard against a loop either, so no reload; the link remains.
      return;
    }
    setTimeout(() => location.reload(), SIGNED_OUT_RELOAD_MS);
  }

  function scheduleReconnect() {
    if (reconnectTimer !== null || signedOut) return;
    failures += 1;
    const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_START_MS * 2 ** (failures - 1));
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    if (failures >= OFFLINE_AFTER_FAILURES || navigator.onLine === false) {
      setStatus("offline", "offline");
    } else {
      setStatus("connecting", "reconnecting…");
    }
    reconnectTimer = setTimeout(connect, delay);
  }

  function abandonSocket() {
    const ws = socket;
    if (ws !== null) {
      socket = null; // its close event, whenever it comes, is ignored
      ready = false;
      clearInFlight();
      clearTimeout(stableTimer);
      ws.close();
    }
    clearTimeout(reconnectTimer);
    reconnectTimer = null;
    scheduleReconnect();
  }

  function reconnectNow() {
    if (socket === null && !signedOut) {
      clearTimeout(reconnectTimer);
      reconnectTimer = null;
      connect();
    }
  }

  function onFrame(ws, event) {
    if (ws !== socket || typeof event.data !== "string") return;
    let frame;
    try {
      frame = JSON.parse(event.data);
    } catch {
      return;
    }
    if (!frame || typeof frame !== "object") return;
    if (frame.type === "error") onErrorFrame(frame);
    else if ((frame.room || "general") !== ROOM) return;
    else if (frame.type === "message") showMessage(frame);
    // The Tornado demo's frames have no type: an id and an html fragment.
    else if (frame.type === undefined && ("id" in frame || "html" in frame)) showMessage(frame);
  }

  function onErrorFrame(frame) {
    const detail = String(frame.detail || frame.error || "error");
    const retryable = RETRYABLE.has(frame.error);
    let clientId = typeof frame.client_id === "string" ? frame.client_id : null;
    // A refusal for now may come before the server read the frame, so without its client_id:
    // with one message in flight it can only be about that one.
    if (clientId === null && retryable) clientId = inFlight;
    const item = clientId === null ? null : outbox.get(clientId);
    if (!item) {
      notify(detail, { link: frame.error === "sign_in_required" ? SIGN_IN : null });
      return;
    }
    if (clientId === inFlight) clearInFlight();
    if (retryable) {
      const seconds = Number(frame.retry_after) > 0 ? Number(frame.retry_after) : RETRY_DEFAULT_S;
      holdUntil = Math.max(holdUntil, Date.now() + seconds * 1000);
      setPendingState(clientId, `${detail}; retrying…`);
    } else if (GIVE_BACK.has(frame.error)) {
      outbox.remove(clientId);
      giveBack(item, detail, frame.error);
    } else {
      outbox.remove(clientId);
      failPending(clientId, detail);
    }
    pump();
  }

  // name_taken, sign_in_required: the text returns to the composer, to send again under
  // another name or once signed in. Something new already typed there is not overwritten: the
  // refused message then stays, marked failed, with its Edit button.
  function giveBack(item, detail, code) {
    const signIn = code === "sign_in_required";
    notify(detail, { link: signIn ? SIGN_IN : null, persist: signIn });
    if (bodyInput.value.trim() !== "") {
      failPending(item.client_id, detail);
      return;
    }
    pendingElement(item.client_id)?.remove();
    bodyInput.value = item.body;
    updateCounter();
    (code === "name_taken" && authorInput ? authorInput : bodyInput).focus();
  }

  function setPendingState(clientId, text) {
    const state = pendingElement(clientId)?.querySelector(".pending-state");
    if (state) state.textContent = text;
  }

  function clearInFlight() {
    clearTimeout(inFlightTimer);
    inFlightTimer = null;
    inFlight = null;
  }

  /** Sends the oldest queued message when the socket is ready and nothing is in flight. */
  function pump() {
    if (form === null) return; // this guest may only read: what is queued waits for a sign-in
    if (!ready || inFlight !== null || socket === null) return;
    if (socket.readyState !== WebSocket.OPEN) return;
    const wait = holdUntil - Date.now();
    if (wait > 0) {
      if (holdTimer === null) {
        holdTimer = setTimeout(() => {
          holdTimer = null;
          pump();
        }, wait);
      }
      return;
    }
    const [item] = outbox.all();
    if (!item) return;
    showPending(item);
    setPendingState(item.client_id, "sending…");
    inFlight = item.client_id;
    // The server answers every frame (the message or an error). No answer means the socket is
    // dead without knowing it (a laptop lid, a changed network): start over on a new one, where
    // sending again is safe because the server de-duplicates by client_id.
    inFlightTimer = setTimeout(() => {
      console.warn("chat: no answer from the server, reconnecting");
      abandonSocket();
    }, ANSWER_TIMEOUT_MS);
    const room = item.room || ROOM;
    const frame = { body: item.body, author: item.author, client_id: item.client_id, room };
    socket.send(JSON.stringify(frame));
  }

  // ---- history ----

  async function fetchMessages(params) {
    const query = new URLSearchParams();
    for (const [key, value] of Object.entries(params)) query.set(key, String(value));
    const response = await fetch(`${API_MESSAGES}?${query}`, {
      headers: { Accept: "application/json" },
      cache: "no-store",
      // A server that accepts the connection and never answers must not stall the catch-up.
      signal: AbortSignal.timeout(FETCH_TIMEOUT_MS),
    });
    if (!response.ok) throw new Error(`GET ${API_MESSAGES} answered ${response.status}`);
    const page = await response.json();
    if (!page || !Array.isArray(page.messages)) throw new Error("unexpected history page");
    return page;
  }

  async function loadOlder() {
    const before = lowestId();
    if (before === null) {
      olderButton.hidden = true;
      return;
    }
    olderButton.disabled = true;
    try {
      const page = await fetchMessages({ before, limit: OLDER_LIMIT });
      // Keep what the reader is looking at in place while content grows above it.
      const fromBottom = scroller.scrollHeight - scroller.scrollTop;
      for (const message of page.messages) {
        if (doc.getElementById("m" + message.id)) continue;
        const clientId = typeof message.client_id === "string" ? message.client_id : null;
        placeInInbox(messageElement(message, clientId));
      }
      scroller.scrollTop = scroller.scrollHeight - fromBottom;
      olderButton.hidden = !page.has_older;
    } catch (error) {
      notify("Could not load older messages. Try again in a moment.");
      console.warn("chat: loading older messages failed", error);
    } finally {
      olderButton.disabled = false;
    }
  }

  // ---- the composer ----

  function charCount(text) {
    let n = 0;
    for (const _ of text) n++; // code points, as the server counts them
    return n;
  }

  function updateCounter() {
    const used = charCount(bodyInput.value);
    const left = MAX_CHARS - used;
    counter.textContent = used === 0 ? "" : `${used} / ${MAX_CHARS}`;
    counter.classList.toggle("near", left < MAX_CHARS * 0.1);
    counter.classList.toggle("over", left < 0);
    bodyInput.setAttribute("aria-invalid", left < 0 ? "true" : "false");
  }

  function submit() {
    const body = bodyInput.value;
    if (body.trim() === "") return;
    if (charCount(body) > MAX_CHARS) {
      notify(`That message is too long: ${charCount(body)} characters, the limit is ${MAX_CHARS}.`);
      return;
    }
    const item = {
      client_id: newClientId(),
      body,
      author: chosenName(),
      user_id: myUserId,
      room: ROOM, // a message queued here goes to this room, even if sent from another page
      queued_at: Date.now(),
    };
    rememberOwn(item.client_id);
    outbox.add(item);
    showPending(item);
    bodyInput.value = "";
    updateCounter();
    if (formError) formError.remove();
    pump();
  }

  if (form !== null) {
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      submit();
    });

    bodyInput.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        submit();
      }
    });

    bodyInput.addEventListener("input", updateCounter);
  }

  function remarkOwn() {
    for (const el of shownMessages()) markOwn(el);
  }

  if (authorInput !== null) {
    authorInput.addEventListener("change", () => {
      store.set(KEYS.author, chosenName());
      remarkOwn();
    });
    authorInput.addEventListener("input", () => store.set(KEYS.author, chosenName()));
  }

  olderButton.addEventListener("click", loadOlder);

  window.addEventListener("online", reconnectNow);
  // The browser knows the network is gone: the open socket is dead even if it has not noticed.
  window.addEventListener("offline", abandonSocket);
  doc.addEventListener("visibilitychange", () => {
    if (doc.visibilityState !== "visible") return;
    // Back from the background: a socket the system suspended may have missed messages.
    if (socket !== null && ready) catchUp(socket, catchUpStart());
    else reconnectNow();
  });
  // Another tab settled or queued a message: keep this tab's pending view in step.
  window.addEventListener("storage", (event) => {
    if (event.key !== KEYS.outbox) return;
    const queued = new Set(outbox.all().map((i) => i.client_id));
    for (const el of outboxView.querySelectorAll(".pending-message:not(.failed)")) {
      if (!queued.has(el.dataset.clientId)) el.remove();
    }
  });

  // ---- start ----

  if (authorInput !== null) {
    if (!authorInput.value.trim()) authorInput.value = store.get(KEYS.author, "") || "";
    else store.set(KEYS.author, chosenName());
  }
  for (const el of shownMessages()) {
    markOwn(el);
    localizeTimes(el);
  }
  if (form !== null) {
    for (const item of outbox.all()) showPending(item);
    updateCounter();
  }
  statusView.hidden = false;
  scrollToBottom();
  connect();
})();
