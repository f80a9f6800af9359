// The chat page's client: wires the modules to the page. Plain ES modules, no build step.
//
// What it adds to the server-rendered page: one socket for every room of the person's (each
// frame names its room), reconnecting with backoff and catching up on all rooms with one
// GET /api/events after every reconnect; a timeline per room, the room shown switched without
// a reload (/r/<name>, back and forward work); unread and mention counts in the room list and
// the tab title, marked read only while the tab is visible and the view at the bottom; an
// outbox in localStorage (pending messages survive a reload and are sent once, oldest first);
// older history on demand; own messages marked; local times and day separators; replies,
// reactions, edits and deletes from a message's toolbar; typing and presence; a notification
// for a mention while the tab is hidden. A socket the server closes because the sign-in ended
// (4401) is not reopened: the page says so and reloads once.

import {
  MessageActions,
  messageIdOf,
  reactionTurnsOn,
  renderReactions,
  startInlineEdit,
} from "./actions.js";
import { Api, deleteJson, patchJson, putJson, roomPath } from "./api.js";
import { Composer, PendingView } from "./composer.js";
import { Connection } from "./connection.js";
import { MentionNotifier } from "./notifications.js";
import { Outbox, OwnClientIds, frameFor, newClientId } from "./outbox.js";
import {
  localizeTimes,
  messageElement,
  placeBefore,
  regroupDays,
  shownMessages,
  stubFromElement,
} from "./render.js";
import { RoomHeader, RoomList, roomFromPath, roomHref } from "./rooms.js";
import { browserStore } from "./storage.js";
import { SeqCursor, Timelines, numericId } from "./timeline.js";
import { TypingState, TypingThrottle, typingText } from "./typing.js";
import { UnreadState, titleWithUnread } from "./unread.js";

const doc = document;
doc.documentElement.classList.remove("no-js");
doc.documentElement.classList.add("js");

const config = doc.body.dataset;
const SOCKET_PATH = config.socketPath || "/chatsocket";
const MAX_CHARS = Number(config.maxChars) || 2000;
const PAGE_ROOM = config.room || "general";
const CATCH_UP_LIMIT = 200;
const OLDER_LIMIT = 50;
const NEAR_BOTTOM_PX = 120;
const ANSWER_TIMEOUT_MS = 10000;
const MARK_READ_DELAY_MS = 250;
const SIGNED_OUT_RELOAD_MS = 1500; // long enough to read "You were signed out"
const RELOAD_GUARD_MS = 30000; // at most one such reload in this long, whatever happens
const SIGNED_OUT_RELOAD_KEY = "chat.signedOutReloadAt";
const AUTHOR_KEY = "chat.author";
const SIGN_IN = { href: "/login?next=/", label: "Sign in" };
const BASE_TITLE = doc.title;
const EXCERPT_CHARS = 80;
const MODERATORS = new Set(["owner", "moderator"]);

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
const api = new Api({ pageRoom: PAGE_ROOM, messagesPath: config.apiMessages || "/api/messages" });
const outbox = new Outbox({ store, userId: me === null ? null : me.id });
const ownClientIds = new OwnClientIds({ store });
const timelines = new Timelines();
const unread = new UnreadState();
const cursor = new SeqCursor(); // where the next catch-up starts; known after the first open
const roomInfo = new Map(); // name -> the room as GET /api/rooms describes it
const panes = new Map(); // name -> a detached element holding a room's messages while not shown
const subscribed = new Set(); // rooms this page listens to without being a member
const typing = new TypingState();
const typingThrottle = new TypingThrottle();
const presence = new Map(); // user id -> status, in the room watched
let current = PAGE_ROOM;
let ready = false; // open and caught up: frames may be sent
let catchingUp = null; // the catch-up under way, if any
let answerTimer = null;
let holdTimer = null;
let markTimer = null;
let typingTimer = null;

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
  onEditLast: editLast,
  onTyping: sendTyping,
});

const pendingView = new PendingView({
  element: doc.getElementById("outbox"),
  authorName: (item) => (me !== null ? me.displayName : item.author || "anonymous"),
  onChange: scrollToBottom,
});

const roomList = new RoomList({ onOpen: (name) => openRoom(name) });
const header = new RoomHeader();
const jumpButton = makeJumpButton();
const notifier = new MentionNotifier({ store, onClick: (room, id) => showFromNotification(room, id) });
const typingView = composer.typingView();
const actions = new MessageActions({ container: inbox, allowed: allowedActions, act });

// ---- own messages, mentions ----

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

/** A message's element for this viewer: own or not, its reactions ("mine" by user id). */
function decorate(el, message) {
  markOwn(el);
  renderReactions(el, message.reactions, me === null ? null : me.id);
  return el;
}

function mentionsMe(el) {
  if (me === null || me.username === "") return false;
  return el.querySelector(`.mention[data-mention="${CSS.escape(me.username)}"]`) !== null;
}

// ---- the rooms' panes: the one shown is #inbox, the others wait detached ----

function paneOf(room) {
  if (room === current) return inbox;
  let pane = panes.get(room);
  if (pane === undefined) {
    pane = doc.createElement("div");
    panes.set(room, pane);
  }
  return pane;
}

function isNearBottom() {
  return scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < NEAR_BOTTOM_PX;
}

function scrollToBottom() {
  scroller.scrollTop = scroller.scrollHeight;
  jumpButton.hidden = true;
}

function makeJumpButton() {
  const button = doc.createElement("button");
  button.type = "button";
  button.id = "jump-new";
  button.className = "jump-new";
  button.textContent = "New messages ↓";
  button.hidden = true;
  button.addEventListener("click", () => {
    scrollToBottom();
    scheduleMarkRead();
  });
  scroller.append(button);
  return button;
}

function roomOfMessage(message, fallback) {
  return typeof message.room === "string" && message.room !== "" ? message.room : fallback;
}

/**
 * Shows one message object (socket frame, catch-up or API row) in its room. `seq` is its
 * place in the change log when it came as a change (it then counts as unread). True when new.
 */
function showMessage(message, { seq = null, room = "general" } = {}) {
  if (!message || message.id === undefined || message.id === null) return false;
  const clientId = typeof message.client_id === "string" ? message.client_id : null;
  if (clientId) settle(clientId);
  const name = roomOfMessage(message, room);
  const timeline = timelines.get(name);
  const id = numericId(message.id);
  if (timeline.has(id)) {
    // A stub (rendered into the page) gives way to the full object; its element changes only
    // when the page could not show everything (reactions).
    const wasStub = Boolean(timeline.get(id).stub);
    const changed = timeline.update(message) === "replaced";
    if (changed && (!wasStub || (message.reactions || []).length > 0)) redraw(name, message);
    return false;
  }
  const { nextId } = timeline.insert(message);
  const el = decorate(messageElement(message), message);
  const here = name === current;
  const follow = here && (isNearBottom() || (clientId !== null && ownClientIds.has(clientId)));
  const pane = paneOf(name);
  placeBefore(pane, el, nextId);
  regroupDays(pane);
  if (seq !== null) noteArrival(name, el, numericId(message.id), seq);
  if (follow) scrollToBottom();
  else if (here && seq !== null) jumpButton.hidden = false;
  if (here) scheduleMarkRead();
  return true;
}

/** A message that came as a change: unread unless it is mine, a mention if it names me. */
function noteArrival(room, el, id, seq) {
  const author = numericId(el.dataset.userId);
  if (author !== null) stoppedTyping(room, author);
  if (el.classList.contains("own")) return;
  const mention = mentionsMe(el);
  unread.noteMessage(room, { id, seq, mention });
  if (!roomInfo.has(room)) refreshRoomsSoon();
  updateBadges();
  if (mention && doc.visibilityState !== "visible") notifyMention(room, el, id);
}

function notifyMention(room, el, id) {
  const author = el.querySelector(".author")?.textContent.trim() || "someone";
  const where = roomInfo.get(room)?.title || room;
  const body = el.querySelector(".body")?.textContent.trim() || "";
  notifier.mention({ id, room, title: `${author} in ${where}`, body });
}

async function showFromNotification(room, id) {
  await openRoom(room);
  const el = inbox.querySelector(`:scope > #m${id}`);
  if (el !== null) el.scrollIntoView({ block: "center" });
}

/** An edit, delete or reaction: applied to a message known here (an unknown one will come in
 * its current state with the history that holds it). */
function applyUpdate(frame) {
  const message = frame.message;
  if (!message || numericId(message.id) === null) return;
  const room = roomOfMessage(message, frame.room || "general");
  if (timelines.get(room).update(message) === "replaced") redraw(room, message);
}

/** Replaces a shown message's element by its new version, in place. */
function redraw(room, message) {
  const old = paneOf(room).querySelector(`:scope > #m${numericId(message.id)}`);
  if (old === null) return;
  old.replaceWith(decorate(messageElement(message), message));
}

// ---- unread counts and read positions ----

function updateBadges() {
  for (const name of roomList.names()) roomList.setCounts(name, unread.counts(name));
  doc.title = titleWithUnread(BASE_TITLE, unread.total());
}

function scheduleMarkRead() {
  clearTimeout(markTimer);
  markTimer = setTimeout(markRead, MARK_READ_DELAY_MS);
}

// Only what the person has seen: the tab visible and the view at the newest message.
function canMarkRead() {
  if (me === null || !roomInfo.get(current)?.member) return false;
  return doc.visibilityState === "visible" && isNearBottom();
}

async function markRead() {
  if (!canMarkRead()) return;
  const room = current;
  const newest = timelines.get(room).highestId();
  if (newest === null) return;
  if (newest <= unread.lastReadId(room) && unread.counts(room).unread === 0) return;
  unread.markedRead(room, newest);
  updateBadges();
  try {
    await api.markRead(room, newest);
  } catch (error) {
    console.warn("chat: marking read failed", error);
  }
}

// ---- the room list ----

let roomsTimer = null;

function refreshRoomsSoon() {
  clearTimeout(roomsTimer);
  roomsTimer = setTimeout(() => refreshRooms().catch(warnRooms), 300);
}

function warnRooms(error) {
  console.warn("chat: loading the room list failed", error);
}

async function refreshRooms() {
  const rooms = await api.rooms();
  roomInfo.clear();
  for (const room of rooms) {
    roomInfo.set(room.name, room);
    if (room.member) unread.fromList(room);
  }
  roomList.update(rooms);
  roomList.setActive(current);
  header.show(roomInfo.get(current) ?? { name: current });
  updateBadges();
  scheduleMarkRead();
}

/** Rooms the page listens to without being a member (a guest's, public ones visited). */
function listenedRooms() {
  return [...new Set([current, ...subscribed])];
}

// A guest's socket listens to general from the start, and members hear their rooms anyway.
function subscribe(room) {
  if (room === "general" || roomInfo.get(room)?.member) return;
  subscribed.add(room);
  connection.send({ type: "subscribe", room });
}

function onMembership(frame) {
  const user = frame.user;
  if (me === null || !user || numericId(user.id) !== me.id) return;
  if (frame.type === "member_left") forgetRoom(frame.room);
  refreshRoomsSoon();
}

function forgetRoom(room) {
  timelines.get(room).clear();
  unread.forget(room);
  panes.delete(room);
  roomList.remove(room);
  if (room === current) openRoom("general");
  updateBadges();
}

function onRoomUpdated(frame) {
  const info = roomInfo.get(frame.room);
  if (info === undefined) return;
  for (const key of ["title", "topic", "archived"]) if (key in frame) info[key] = frame[key];
  roomList.ensure(info);
  if (frame.room === current) header.show(info);
}

// ---- switching rooms ----

async function openRoom(name, { push = true } = {}) {
  if (name === current) return;
  const incoming = paneOf(name);
  panes.delete(name);
  const outgoing = doc.createElement("div");
  outgoing.append(...inbox.childNodes);
  panes.set(current, outgoing);
  current = name;
  inbox.append(...incoming.childNodes);
  if (push) history.pushState({ room: name }, "", roomHref(name));
  showRoomChrome(name);
  subscribe(name);
  const timeline = timelines.get(name);
  if (!timeline.loaded) {
    try {
      await loadNewest(name);
    } catch (error) {
      notify("Could not load this room. Try again in a moment.");
      console.warn("chat: loading a room failed", error);
    }
  }
  if (name !== current) return;
  scrollToBottom();
  scheduleMarkRead();
}

function showRoomChrome(name) {
  composer.clearReply();
  actions.hide();
  watchPresence(name);
  renderTyping();
  header.show(roomInfo.get(name) ?? { name });
  roomList.setActive(name);
  olderButton.hidden = !timelines.get(name).hasOlder;
  jumpButton.hidden = true;
  pendingView.clear();
  for (const item of outbox.all()) if ((item.room || "general") === name) pendingView.show(item);
}

/** The room's newest page of history, merged into what is already known. */
async function loadNewest(room) {
  const page = await api.messages(room, { limit: OLDER_LIMIT });
  for (const message of page.messages) showMessage(message, { room });
  const timeline = timelines.get(room);
  timeline.hasOlder = Boolean(page.has_older) || timeline.hasOlder;
  timeline.loaded = true;
  if (room === current) olderButton.hidden = !timeline.hasOlder;
}

async function loadOlder() {
  const room = current;
  const timeline = timelines.get(room);
  const before = timeline.lowestId();
  if (before === null) {
    olderButton.hidden = true;
    return;
  }
  olderButton.disabled = true;
  try {
    const page = await api.messages(room, { before, limit: OLDER_LIMIT });
    if (room !== current) return;
    // Keep what the reader is looking at in place while content grows above it.
    const fromBottom = scroller.scrollHeight - scroller.scrollTop;
    for (const message of page.messages) showMessage(message, { room });
    scroller.scrollTop = scroller.scrollHeight - fromBottom;
    timeline.hasOlder = Boolean(page.has_older);
    olderButton.hidden = !page.has_older;
  } catch (error) {
    notify("Could not load older messages. Try again in a moment.");
    console.warn("chat: loading older messages failed", error);
  } finally {
    olderButton.disabled = false;
  }
}

// ---- sending ----

function queue(body, replyTo = null) {
  const item = {
    client_id: newClientId(),
    body,
    author: composer.authorName(),
    user_id: me === null ? null : me.id,
    room: current,
    queued_at: Date.now(),
  };
  if (replyTo !== null) item.reply_to = replyTo;
  typingThrottle.reset(current);
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
  if ((item.room || "general") === current) pendingView.show(item);
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

// ---- frames: live, or replayed by a catch-up ----

function applyFrame(frame) {
  const seq = numericId(frame.seq);
  if (seq !== null) cursor.note(seq, Date.now());
  switch (frame.type) {
    case "error":
      return onErrorFrame(frame);
    case "message":
      return showMessage(frame, { seq });
    case "message_updated":
      return applyUpdate(frame);
    case "read":
      unread.applyRead(frame);
      return updateBadges();
    case "member_joined":
    case "member_left":
      return onMembership(frame);
    case "room_updated":
      return onRoomUpdated(frame);
    case "typing":
      return onTypingFrame(frame);
    case "presence_snapshot":
    case "presence":
      return onPresenceFrame(frame);
    case undefined:
      // The Tornado demo's frames have no type: an id and an html fragment.
      if ("id" in frame || "html" in frame) showMessage(frame, { seq });
      return undefined;
    default:
      return undefined; // subscribed, unsubscribed, and whatever a newer server sends
  }
}

// ---- catching up ----

/** After the page's first open: where the change log is, and what the page's room missed
 * between rendering and now (the page was rendered from message ids, not the log). */
async function firstCatchUp(ws) {
  cursor.reset(await api.newestSeq(listenedRooms()));
  const room = current;
  // From below the first message shown: the page's own rendering lacks reactions.
  let after = Math.max(0, (timelines.get(room).lowestId() ?? 1) - 1);
  for (;;) {
    const page = await api.messages(room, { after, limit: CATCH_UP_LIMIT });
    if (!connection.isCurrent(ws)) return;
    for (const message of page.messages) showMessage(message, { room });
    if (!page.has_newer) break;
    const next = numericId(page.newer_cursor);
    if (next === null || next <= after) break;
    after = next;
  }
  refreshRooms().catch(warnRooms);
}

/** Every change in every room since the cursor, in one request (a page at a time). */
async function catchUpEvents(ws) {
  // Read synchronously: frames arriving during the catch-up must not move its start.
  let after = cursor.start(Date.now());
  for (;;) {
    const answer = await api.events(after, { limit: CATCH_UP_LIMIT, rooms: listenedRooms() });
    if (!connection.isCurrent(ws)) return;
    if (answer.reload) {
      await reloadEverything(answer.cursor);
      return;
    }
    for (const frame of answer.events) applyFrame(frame);
    const next = numericId(answer.cursor);
    if (next !== null) cursor.note(next, Date.now());
    if (!answer.has_more || next === null || next <= after) break;
    after = next;
  }
}

/** Too far behind for the log: start again from the newest history and the room list. */
async function reloadEverything(newest) {
  cursor.reset(numericId(newest) ?? 0);
  timelines.forgetAll();
  panes.clear();
  inbox.replaceChildren();
  await loadNewest(current);
  await refreshRooms();
  scrollToBottom();
}

async function catchUp(ws) {
  if (catchingUp !== null) return catchingUp;
  catchingUp = (async () => {
    try {
      if (cursor.known) await catchUpEvents(ws);
      else await firstCatchUp(ws);
    } catch (error) {
      if (!connection.isCurrent(ws)) return;
      // Without the missed changes the page would have a gap: start over.
      console.warn("chat: catch-up failed, reconnecting", error);
      connection.abandon();
      return;
    } finally {
      catchingUp = null;
    }
    if (!connection.isCurrent(ws)) return;
    ready = true;
    pump();
    scheduleMarkRead();
  })();
  return catchingUp;
}

function onOpen(ws) {
  for (const room of listenedRooms()) subscribe(room);
  watchPresence(current);
  sendVisibility();
  catchUp(ws);
}

// ---- acting on messages: reply, react, edit, delete ----

function messageOf(el) {
  const id = messageIdOf(el);
  return { id, room: current, message: timelines.get(current).get(id) ?? null };
}

function authorOf(el) {
  return numericId(el.dataset.userId);
}

function allowedActions(el) {
  const signedIn = me !== null;
  const own = signedIn && authorOf(el) === me.id;
  const role = roomInfo.get(current)?.role;
  return {
    reply: composer.enabled,
    react: signedIn,
    edit: own,
    delete: own || (signedIn && MODERATORS.has(role)),
  };
}

function messageUrl(room, id) {
  return `${roomPath(room)}/messages/${id}`;
}

function refused(what, error) {
  notify(error.detail || `Could not ${what} that message. Try again in a moment.`);
  console.warn(`chat: ${what} failed`, error);
}

function act(action, el, detail) {
  const { id, room, message } = messageOf(el);
  if (id === null) return;
  if (action === "reply") {
    const author = el.querySelector(".meta .author")?.textContent.trim() || "anonymous";
    const text = el.querySelector(":scope > .body")?.textContent.trim() || "";
    composer.setReply({ id, author, excerpt: text.slice(0, EXCERPT_CHARS) });
  } else if (action === "react") {
    react(room, id, message, detail);
  } else if (action === "edit") {
    edit(el, room, id, message);
  } else if (action === "delete") {
    remove(room, id);
  }
}

async function react(room, id, message, emoji) {
  const on = reactionTurnsOn(message?.reactions, emoji, me.id);
  const url = `${messageUrl(room, id)}/reactions/${encodeURIComponent(emoji)}`;
  try {
    await (on ? putJson(url) : deleteJson(url));
  } catch (error) {
    refused("react to", error);
  }
}

function edit(el, room, id, message) {
  const text = message && !message.stub ? String(message.body ?? "") : bodyText(el);
  startInlineEdit(el, text, {
    maxChars: MAX_CHARS,
    onSave: async (body) => {
      try {
        await patchJson(messageUrl(room, id), { body });
      } catch (error) {
        refused("edit", error);
        throw error;
      }
    },
  });
}

function bodyText(el) {
  return el.querySelector(":scope > .body")?.textContent ?? "";
}

async function remove(room, id) {
  if (!window.confirm("Delete this message? Everyone will see that it was deleted.")) return;
  try {
    await deleteJson(messageUrl(room, id));
  } catch (error) {
    refused("delete", error);
  }
}

/** Up arrow in the empty composer: edit one's last message in the room shown. */
function editLast() {
  if (me === null) return false;
  const last = timelines.get(current).lastWhere((m) => !m.deleted && numericId(m.user?.id) === me.id);
  const el = last === null ? null : inbox.querySelector(`:scope > #m${numericId(last.id)}`);
  if (el === null) return false;
  el.scrollIntoView({ block: "nearest" });
  edit(el, current, numericId(last.id), last);
  return true;
}

// ---- typing and presence (ephemeral: never caught up) ----

function sendTyping() {
  if (me === null || !ready) return;
  if (typingThrottle.shouldSend(current, Date.now())) connection.send({ type: "typing", room: current });
}

function onTypingFrame(frame) {
  const user = frame.user;
  if (!user || (me !== null && numericId(user.id) === me.id)) return;
  typing.seen(frame.room || "general", user, frame.expires_in, Date.now());
  renderTyping();
}

function stoppedTyping(room, userId) {
  typing.stopped(room, userId);
  if (room === current) renderTyping();
}

function renderTyping() {
  clearTimeout(typingTimer);
  typingView.textContent = typingText(typing.names(current, Date.now()));
  const next = typing.nextExpiry(current);
  if (next !== null) typingTimer = setTimeout(renderTyping, Math.max(50, next - Date.now()));
}

function watchPresence(room) {
  presence.clear();
  header.setPresence("");
  if (me !== null) connection.send({ type: "watch", room });
}

function sendVisibility() {
  if (me === null) return;
  const state = doc.visibilityState === "visible" ? "visible" : "hidden";
  connection.send({ type: "presence", state });
}

function onPresenceFrame(frame) {
  if (frame.type === "presence_snapshot") {
    if (frame.room !== current) return;
    presence.clear();
    for (const [id, status] of Object.entries(frame.users || {})) presence.set(Number(id), status);
  } else {
    presence.set(Number(frame.user), frame.status);
  }
  const online = [...presence.values()].filter((status) => status !== "offline").length;
  header.setPresence(online > 0 ? `${online} online` : "");
}

/** The one polite ask: a button in the room header, shown until it is used. */
function offerNotifications() {
  if (me === null || !notifier.shouldOffer) return;
  const ask = doc.createElement("button");
  ask.type = "button";
  ask.className = "notifications-offer";
  ask.textContent = "Notify me of mentions";
  ask.addEventListener("click", async () => {
    ask.remove();
    await notifier.ask();
  });
  header.element.append(ask);
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
  onOpen,
  onFrame: applyFrame,
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
  sendVisibility();
  if (doc.visibilityState !== "visible") return;
  // Back from the background: a socket the system suspended may have missed changes.
  if (connection.socket !== null && ready) catchUp(connection.socket);
  else connection.reconnectNow();
  scheduleMarkRead();
});
scroller.addEventListener(
  "scroll",
  () => {
    actions.hide();
    if (!isNearBottom()) return;
    jumpButton.hidden = true;
    scheduleMarkRead();
  },
  { passive: true },
);
window.addEventListener("popstate", () => {
  openRoom(roomFromPath(location.pathname, PAGE_ROOM), { push: false });
});
// Another tab settled or queued a message: keep this tab's pending view in step.
window.addEventListener("storage", (event) => {
  if (event.key !== outbox.key) return;
  pendingView.keepOnly(new Set(outbox.all().map((i) => i.client_id)));
});

const pageTimeline = timelines.get(PAGE_ROOM);
for (const el of shownMessages(inbox)) {
  pageTimeline.insert(stubFromElement(el, PAGE_ROOM));
  markOwn(el);
  localizeTimes(el);
}
pageTimeline.loaded = true;
pageTimeline.hasOlder = !olderButton.hidden;
regroupDays(inbox);
history.replaceState({ room: current }, "", location.href);
header.show({ name: current });
offerNotifications();
if (composer.enabled) {
  for (const item of outbox.all()) if ((item.room || "general") === current) pendingView.show(item);
  composer.updateCounter();
}
statusView.hidden = false;
scrollToBottom();
connection.connect();
