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

import { renderReactions } from "./actions.js";
import { Api } from "./api.js";
import { Composer, PendingView } from "./composer.js";
import { Connection } from "./connection.js";
import { Conversation } from "./conversation.js";
import { MentionNotifier } from "./notifications.js";
import { Outbox, OwnClientIds } from "./outbox.js";
import { Presence } from "./presence.js";
import {
  localizeTimes,
  messageElement,
  placeBefore,
  regroupDays,
  shownMessages,
  stubFromElement,
} from "./render.js";
import { RoomHeader, RoomList, roomFromPath, roomHref } from "./rooms.js";
import { SIGN_IN, Sender } from "./sending.js";
import { browserStore } from "./storage.js";
import { Sync } from "./sync.js";
import { SeqCursor, Timelines, numericId } from "./timeline.js";
import { UnreadState, titleWithUnread } from "./unread.js";

const doc = document;
doc.documentElement.classList.remove("no-js");
doc.documentElement.classList.add("js");

const config = doc.body.dataset;
const SOCKET_PATH = config.socketPath || "/chatsocket";
const MAX_CHARS = Number(config.maxChars) || 2000;
const PAGE_ROOM = config.room || "general";
const OLDER_LIMIT = 50;
const NEAR_BOTTOM_PX = 120;
const MARK_READ_DELAY_MS = 250;
const SIGNED_OUT_RELOAD_MS = 1500; // long enough to read "You were signed out"
const RELOAD_GUARD_MS = 30000; // at most one such reload in this long, whatever happens
const SIGNED_OUT_RELOAD_KEY = "chat.signedOutReloadAt";
const AUTHOR_KEY = "chat.author";
// The tab says which room it shows, as the server renders it ("General · Chat"), and keeps
// saying so after a switch without a reload; the unread total goes in front.
const SITE_TITLE = "Chat";
let baseTitle = doc.title;

// The signed-in person, or null for a guest. A signed-in client cannot choose its name.
const me = config.userId
  ? {
      id: Number(config.userId),
      username: config.username || "",
      displayName: config.displayName || config.username || "",
      isAdmin: config.role === "admin", // admins may delete any message (the server decides)
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
let current = PAGE_ROOM;
let markTimer = null;

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
  onSubmit: (body, replyTo) => {
    presence.sent(current);
    sender.queue(body, replyTo);
  },
  notify: (text) => notify(text),
  onEditLast: () => conversation.editLast(),
  onTyping: () => presence.typed(),
});

const pendingView = new PendingView({
  element: doc.getElementById("outbox"),
  authorName: (item) => (me !== null ? me.displayName : item.author || "anonymous"),
  onChange: scrollToBottom,
});

const header = new RoomHeader();
const roomList = new RoomList({ onOpen: (name) => openRoom(name) });
const jumpButton = makeJumpButton();
const notifier = new MentionNotifier({
  store,
  onClick: (room, id) => showFromNotification(room, id),
});

// What the other modules share of the page: its state, and what they may ask of it.
const page = {
  me,
  inbox,
  header,
  composer,
  pendingView,
  outbox,
  ownClientIds,
  timelines,
  roomInfo,
  api,
  cursor,
  notify,
  maxChars: MAX_CHARS,
  typingView: composer.typingView(),
  currentRoom: () => current,
  listenedRooms,
  showMessage,
  applyFrame,
  refreshRooms: () => refreshRooms().catch(warnRooms),
  startOver,
  send: (frame) => connection.send(frame),
  isCurrent: (ws) => connection.isCurrent(ws),
  abandon: () => connection.abandon(),
  isReady: () => sender.ready,
  isOpen: () => connection.open,
  onCaughtUp: () => {
    sender.setReady(true);
    scheduleMarkRead();
  },
};
const sender = new Sender(page);
const sync = new Sync(page);
const conversation = new Conversation(page);
const presence = new Presence(page);

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
  if (clientId) sender.settle(clientId);
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
  if (author !== null) presence.stopped(room, author);
  // Unread is kept for members (a guest, or a visitor of a public room, has no read position).
  if (el.classList.contains("own") || me === null || roomInfo.get(room)?.member === false) return;
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
  doc.title = titleWithUnread(baseTitle, unread.total());
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
  conversation.hide();
  presence.watch(name);
  presence.render();
  const info = roomInfo.get(name) ?? { name };
  header.show(info);
  baseTitle = `${info.title || info.name} · ${SITE_TITLE}`;
  updateBadges();
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

// ---- frames: live, or replayed by a catch-up ----

function applyFrame(frame) {
  const seq = numericId(frame.seq);
  if (seq !== null) cursor.note(seq, Date.now());
  switch (frame.type) {
    case "error":
      return sender.onError(frame);
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
      return presence.onTyping(frame);
    case "presence_snapshot":
    case "presence":
      return presence.onPresence(frame);
    case undefined:
      // The Tornado demo's frames have no type: an id and an html fragment.
      if ("id" in frame || "html" in frame) showMessage(frame, { seq });
      return undefined;
    default:
      return undefined; // subscribed, unsubscribed, and whatever a newer server sends
  }
}

// ---- catching up ----

/** Too far behind for the log: start again from the newest history and the room list. */
async function startOver() {
  timelines.forgetAll();
  panes.clear();
  inbox.replaceChildren();
  await loadNewest(current);
  await refreshRooms();
  scrollToBottom();
}

function onOpen(ws) {
  for (const room of listenedRooms()) subscribe(room);
  presence.watch(current);
  presence.visibility(doc.visibilityState === "visible");
  sync.catchUp(ws);
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
  onClosed: () => sender.setReady(false),
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
  presence.visibility(doc.visibilityState === "visible");
  if (doc.visibilityState !== "visible") return;
  // Back from the background: a socket the system suspended may have missed changes.
  if (connection.socket !== null && sender.ready) sync.catchUp(connection.socket);
  else connection.reconnectNow();
  scheduleMarkRead();
});
scroller.addEventListener(
  "scroll",
  () => {
    conversation.hide();
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
// A permalink page (/r/<room>/m/<id>) marks its message: show it in context, not the bottom.
const linked = inbox.querySelector(":scope > .message.highlighted");
if (linked !== null) linked.scrollIntoView({ block: "center" });
else scrollToBottom();
connection.connect();
