// The chat page's client: wires the modules to the page. Plain ES modules, no build step.
//
// What it adds to the server-rendered page: a socket that reconnects with backoff and catches
// up after every open; an outbox in localStorage (pending messages survive a reload and are
// sent once, oldest first); older history on demand; own messages marked; local times and day
// separators; Enter to send. A socket the server closes because the sign-in ended (4401) is
// not reopened: the page says so and reloads once.

import { Composer, PendingView } from "./composer.js";
import { Connection } from "./connection.js";
import { Outbox, OwnClientIds, frameFor, newClientId } from "./outbox.js";
import {
  localizeTimes,
  messageElement,
  placeBefore,
  regroupDays,
  shownMessages,
  stubFromElement,
} from "./render.js";
import { browserStore } from "./storage.js";
import { SeqCursor, Timelines, numericId } from "./timeline.js";

const doc = document;
doc.documentElement.classList.remove("no-js");
doc.documentElement.classList.add("js");

const config = doc.body.dataset;
const SOCKET_PATH = config.socketPath || "/chatsocket";
const API_MESSAGES = config.apiMessages || "/api/messages";
const MAX_CHARS = Number(config.maxChars) || 2000;
const ROOM = config.room || "general";
const CATCH_UP_LIMIT = 200;
const OLDER_LIMIT = 50;
const NEAR_BOTTOM_PX = 120;
const FETCH_TIMEOUT_MS = 15000;
const ANSWER_TIMEOUT_MS = 10000;
const SIGNED_OUT_RELOAD_MS = 1500; // long enough to read "You were signed out"
const RELOAD_GUARD_MS = 30000; // at most one such reload in this long, whatever happens
const SIGNED_OUT_RELOAD_KEY = "chat.signedOutReloadAt";
const AUTHOR_KEY = "chat.author";
const SIGN_IN = { href: "/login?next=/", label: "Sign in" };

// The signed-in person, or null for a guest. A signed-in client cannot choose its name.
const me = config.userId
  ? {
      id: Number(config.userId),
      username: config.username || "",
      displayName: config.displayName || config.username || "",
    }
  : null;

const inbox = doc.getElementById("inbox");
const scroller = doc.getElementById("scroller");
const statusView = doc.getElementById("status");
const olderButton = doc.getElementById("load-older");
const noticeView = doc.getElementById("notice");

const store = browserStore();
const outbox = new Outbox({ store, userId: me === null ? null : me.id });
const ownClientIds = new OwnClientIds({ store });
const timelines = new Timelines();
const timeline = timelines.get(ROOM);
// Message ids as the catch-up cursor, settled a reorder window after they were shown.
let cursor = null;
let ready = false; // open and caught up: frames may be sent
let answerTimer = null;
let holdTimer = null;

// ---- notices ----

let noticeTimer = null;

/** Shows `text` (and a link); it goes away after a while unless `persist`. */
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

const composer = new Composer({
  form: doc.getElementById("messageform"),
  maxChars: MAX_CHARS,
  onSubmit: queue,
  notify: (text) => notify(text),
});

const pendingView = new PendingView({
  element: doc.getElementById("outbox"),
  authorName: (item) => (me !== null ? me.displayName : item.author || "anonymous"),
  onChange: scrollToBottom,
});

// ---- own messages ----

// Signed in: mine exactly when my account wrote it, never by name. A guest: what this browser
// sent (by client_id), or a guest message under the name typed now.
function isOwn(el) {
  const authorId = numericId(el.dataset.userId);
  if (me !== null) return authorId === me.id;
  if (authorId !== null) return false;
  const clientId = el.dataset.clientId;
  if (clientId && ownClientIds.has(clientId)) return true;
  const name = composer.authorName();
  const author = el.querySelector(".author");
  return name !== "" && author !== null && author.textContent.trim() === name;
}

function markOwn(el) {
  el.classList.toggle("own", isOwn(el));
}

// ---- the inbox ----

function isNearBottom() {
  return scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < NEAR_BOTTOM_PX;
}

function scrollToBottom() {
  scroller.scrollTop = scroller.scrollHeight;
}

/** Shows one message object (socket frame or API row). Returns true when it was new. */
function showMessage(message) {
  if (!message || message.id === undefined || message.id === null) return false;
  const clientId = typeof message.client_id === "string" ? message.client_id : null;
  if (clientId) settle(clientId);
  const { isNew, nextId } = timeline.insert(message);
  if (!isNew) return false;
  const el = messageElement(message);
  markOwn(el);
  const follow = isNearBottom() || (clientId !== null && ownClientIds.has(clientId));
  placeBefore(inbox, el, nextId);
  regroupDays(inbox);
  if (cursor !== null) cursor.note(numericId(message.id), Date.now());
  if (follow) scrollToBottom();
  return true;
}

// ---- sending ----

function queue(body) {
  const item = {
    client_id: newClientId(),
    body,
    author: composer.authorName(),
    user_id: me === null ? null : me.id,
    room: ROOM,
    queued_at: Date.now(),
  };
  ownClientIds.add(item.client_id);
  outbox.add(item);
  pendingView.show(item);
  pump();
}

// The server has the message with this client_id: it leaves the outbox.
function settle(clientId) {
  pendingView.settle(clientId);
  if (outbox.settle(clientId)) {
    clearTimeout(answerTimer);
    pump();
  }
}

/** Sends the oldest queued message when the socket is ready and nothing is in flight. */
function pump() {
  if (!composer.enabled || !ready) return; // a guest who may only read: it waits for a sign-in
  const next = outbox.next(Date.now());
  if (next === null) return;
  if (next.waitMs !== undefined) {
    if (holdTimer === null) {
      holdTimer = setTimeout(() => {
        holdTimer = null;
        pump();
      }, next.waitMs);
    }
    return;
  }
  const item = next.send;
  pendingView.show(item);
  pendingView.setState(item.client_id, "sending…");
  if (!connection.send(frameFor(item))) return;
  outbox.sent(item.client_id);
  // The server answers every frame (the message or an error). No answer means the socket is
  // dead without knowing it (a laptop lid, a changed network): start over on a new one, where
  // sending again is safe because the server de-duplicates by client_id.
  answerTimer = setTimeout(() => {
    console.warn("chat: no answer from the server, reconnecting");
    connection.abandon();
  }, ANSWER_TIMEOUT_MS);
}

function onErrorFrame(frame) {
  const detail = String(frame.detail || frame.error || "error");
  const wasInFlight = outbox.inFlight;
  const { action, clientId, item } = outbox.refusal(frame, Date.now());
  if (clientId !== null && clientId === wasInFlight) clearTimeout(answerTimer);
  if (action === "notice") {
    notify(detail, { link: frame.error === "sign_in_required" ? SIGN_IN : null });
    return;
  }
  if (action === "retry") pendingView.setState(clientId, `${detail}; retrying…`);
  else if (action === "give_back") giveBack(item, detail, frame.error);
  else pendingView.fail(clientId, detail, composer);
  pump();
}

// name_taken, sign_in_required: the text returns to the composer, to send again under another
// name or once signed in. Something new already typed there is not overwritten: the refused
// message then stays, marked failed, with its Edit button.
function giveBack(item, detail, code) {
  const signIn = code === "sign_in_required";
  notify(detail, { link: signIn ? SIGN_IN : null, persist: signIn });
  if (composer.busy) {
    pendingView.fail(item.client_id, detail, composer);
    return;
  }
  pendingView.remove(item.client_id);
  composer.giveBack(item.body, { focusName: code === "name_taken" });
}

// ---- history and catch-up ----

async function fetchJson(url) {
  const response = await fetch(url, {
    headers: { Accept: "application/json" },
    cache: "no-store",
    // A server that accepts the connection and never answers must not stall the catch-up.
    signal: AbortSignal.timeout(FETCH_TIMEOUT_MS),
  });
  if (!response.ok) throw new Error(`GET ${url} answered ${response.status}`);
  return response.json();
}

async function fetchMessages(params) {
  const page = await fetchJson(`${API_MESSAGES}?${new URLSearchParams(params)}`);
  if (!page || !Array.isArray(page.messages)) throw new Error("unexpected history page");
  return page;
}

async function catchUp(ws) {
  // Read synchronously: frames arriving during the catch-up must not move its start.
  let after = cursor.start(Date.now()) ?? 0;
  try {
    for (;;) {
      const page = await fetchMessages({ after, limit: CATCH_UP_LIMIT });
      if (!connection.isCurrent(ws)) return;
      for (const message of page.messages) showMessage(message);
      if (!page.has_newer) break;
      const next = numericId(page.newer_cursor);
      if (next === null || next <= after) break;
      after = next;
    }
  } catch (error) {
    if (!connection.isCurrent(ws)) return;
    // Without the missed messages the page would have a gap: start over.
    console.warn("chat: catch-up failed, reconnecting", error);
    connection.abandon();
    return;
  }
  ready = true;
  pump();
}

async function loadOlder() {
  const before = timeline.lowestId();
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
      const { isNew, nextId } = timeline.insert(message);
      if (!isNew) continue;
      const el = messageElement(message);
      markOwn(el);
      placeBefore(inbox, el, nextId);
    }
    regroupDays(inbox);
    scroller.scrollTop = scroller.scrollHeight - fromBottom;
    olderButton.hidden = !page.has_older;
  } catch (error) {
    notify("Could not load older messages. Try again in a moment.");
    console.warn("chat: loading older messages failed", error);
  } finally {
    olderButton.disabled = false;
  }
}

// ---- the socket ----

function socketUrl() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}${SOCKET_PATH}`;
}

function setStatus(state, text) {
  statusView.dataset.state = state;
  statusView.textContent = text;
}

function onFrame(frame) {
  if (frame.type === "error") onErrorFrame(frame);
  else if (frame.type === "message") showMessage(frame);
  // The Tornado demo's frames have no type: an id and an html fragment.
  else if (frame.type === undefined && ("id" in frame || "html" in frame)) showMessage(frame);
}

// Signed out here or elsewhere, revoked or disabled: a new socket would be refused or open as
// a guest under a page that still names the person. Say so, and reload once, which shows the
// page as it now is (the guest view, or the sign-in form).
function onSignedOut() {
  notify("You were signed out.", { link: SIGN_IN, persist: true });
  try {
    const last = Number(sessionStorage.getItem(SIGNED_OUT_RELOAD_KEY)) || 0;
    if (Date.now() - last < RELOAD_GUARD_MS) return; // reloaded just now: never loop
    sessionStorage.setItem(SIGNED_OUT_RELOAD_KEY, String(Date.now()));
  } catch {
    return; // no sessionStorage: no guard against a loop either, so no reload
  }
  setTimeout(() => location.reload(), SIGNED_OUT_RELOAD_MS);
}

const connection = new Connection({
  url: socketUrl,
  online: () => navigator.onLine !== false,
  onOpen: catchUp,
  onFrame,
  onStatus: setStatus,
  onClosed: () => {
    ready = false;
    outbox.clearInFlight();
    clearTimeout(answerTimer);
  },
  onSignedOut,
});

// ---- start ----

function remarkOwn() {
  for (const el of shownMessages(inbox)) markOwn(el);
}

const authorInput = doc.getElementById("author");
if (authorInput !== null) {
  if (!authorInput.value.trim()) authorInput.value = store.get(AUTHOR_KEY, "") || "";
  else store.set(AUTHOR_KEY, composer.authorName());
  authorInput.addEventListener("change", () => {
    store.set(AUTHOR_KEY, composer.authorName());
    remarkOwn();
  });
  authorInput.addEventListener("input", () => store.set(AUTHOR_KEY, composer.authorName()));
}

olderButton.addEventListener("click", loadOlder);
window.addEventListener("online", () => connection.reconnectNow());
// The browser knows the network is gone: the open socket is dead even if it has not noticed.
window.addEventListener("offline", () => connection.abandon());
doc.addEventListener("visibilitychange", () => {
  if (doc.visibilityState !== "visible") return;
  // Back from the background: a socket the system suspended may have missed messages.
  if (connection.socket !== null && ready) catchUp(connection.socket);
  else connection.reconnectNow();
});
// Another tab settled or queued a message: keep this tab's pending view in step.
window.addEventListener("storage", (event) => {
  if (event.key !== outbox.key) return;
  pendingView.keepOnly(new Set(outbox.all().map((i) => i.client_id)));
});

for (const el of shownMessages(inbox)) {
  timeline.insert(stubFromElement(el, ROOM));
  markOwn(el);
  localizeTimes(el);
}
timeline.loaded = true;
regroupDays(inbox);
cursor = new SeqCursor(timeline.highestId() ?? 0);
if (composer.enabled) {
  for (const item of outbox.all()) pendingView.show(item);
  composer.updateCounter();
}
statusView.hidden = false;
scrollToBottom();
connection.connect();
