// Messages as DOM nodes. The only HTML inserted from the server is a message's `html`
// fragment (rendered and escaped by templates/message.html), parsed in a <template>;
// everything else is built with textContent.

import { dayKey, dayLabel, dayStarts, timeText } from "./days.js";
import { numericId } from "./timeline.js";

const FORMATS = {
  time: new Intl.DateTimeFormat(undefined, { hour: "numeric", minute: "2-digit" }),
  dateTime: new Intl.DateTimeFormat(undefined, {
    month: "short",
    day: "numeric",
    hour: "numeric",
    minute: "2-digit",
  }),
  full: new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "medium" }),
  day: new Intl.DateTimeFormat(undefined, { weekday: "long", month: "long", day: "numeric" }),
};

export function elementId(el) {
  return numericId(el.dataset.id ?? el.id.replace(/^m/, ""));
}

export function messageTime(el) {
  const time = el.querySelector(".meta time[datetime]");
  if (time === null) return null;
  const when = new Date(time.getAttribute("datetime"));
  return Number.isNaN(when.getTime()) ? null : when;
}

export function localizeTimes(el, now = new Date()) {
  for (const time of el.querySelectorAll("time[datetime]")) {
    const when = new Date(time.getAttribute("datetime"));
    if (Number.isNaN(when.getTime())) continue;
    time.textContent = timeText(when, now, FORMATS);
    time.title = FORMATS.full.format(when);
  }
}

function fragmentElement(html) {
  const template = document.createElement("template");
  template.innerHTML = html; // the server's escaped fragment, never anything else
  const el = template.content.firstElementChild;
  return el && el.classList.contains("message") ? el : null;
}

/** A message without an html fragment (a client of some other server) is built as text. */
function textElement(message) {
  const el = document.createElement("div");
  el.className = "message";
  el.id = "m" + message.id;
  el.dataset.id = String(message.id);
  const meta = el.appendChild(document.createElement("div"));
  meta.className = "meta";
  const author = meta.appendChild(document.createElement("span"));
  author.className = "author";
  author.textContent = message.author || "anonymous";
  const body = el.appendChild(document.createElement("div"));
  body.className = "body";
  body.textContent = String(message.body ?? "");
  return el;
}

/** The element for a message object (socket frame or API row). */
export function messageElement(message) {
  const el = (message.html && fragmentElement(String(message.html))) || textElement(message);
  const clientId = typeof message.client_id === "string" ? message.client_id : null;
  if (clientId) el.dataset.clientId = clientId;
  const authorId = message.user ? numericId(message.user.id) : null;
  if (authorId !== null) el.dataset.userId = String(authorId);
  if (message.room) el.dataset.room = String(message.room);
  localizeTimes(el);
  return el;
}

/** A stub message object for an element the server rendered into the page. */
export function stubFromElement(el, room) {
  const when = messageTime(el);
  return {
    stub: true,
    id: elementId(el),
    room,
    client_id: el.dataset.clientId || null,
    user: el.dataset.userId ? { id: numericId(el.dataset.userId) } : null,
    created_at: when === null ? null : when.toISOString(),
    deleted: el.dataset.deleted === "true",
    reactions: [],
  };
}

export function shownMessages(container) {
  return container.querySelectorAll(":scope > .message");
}

/** Puts `el` before the message with id `nextId` (or at the end) in `container`. */
export function placeBefore(container, el, nextId) {
  const next = nextId === null ? null : container.querySelector(`:scope > #m${nextId}`);
  if (next === null) container.append(el);
  else container.insertBefore(el, next);
}

/** Puts el at its id-ordered place, scanning from the end (new messages go last). */
export function placeInOrder(container, el) {
  const id = elementId(el);
  if (id === null) {
    container.append(el);
    return;
  }
  let after = container.lastElementChild;
  while (after !== null) {
    const otherId = after.classList.contains("message") ? elementId(after) : null;
    if (otherId !== null && otherId < id) break;
    after = after.previousElementSibling;
  }
  if (after === null) container.prepend(el);
  else after.after(el);
}

/** Day separators exactly before each first message of a local day. */
export function regroupDays(container, now = new Date()) {
  for (const old of container.querySelectorAll(":scope > .day-separator")) old.remove();
  const messages = [...shownMessages(container)];
  const keys = messages.map((el) => {
    const when = messageTime(el);
    return when === null ? null : dayKey(when);
  });
  for (const index of dayStarts(keys)) {
    const separator = document.createElement("div");
    separator.className = "day-separator";
    separator.dataset.day = keys[index];
    separator.setAttribute("role", "separator");
    const label = separator.appendChild(document.createElement("span"));
    label.textContent = dayLabel(keys[index], now, FORMATS.day);
    container.insertBefore(separator, messages[index]);
  }
}

/** A message typed here and not yet stored: built from text only. */
export function pendingElement(item, authorName) {
  const el = document.createElement("div");
  el.className = "pending-message own";
  el.dataset.clientId = item.client_id;
  const meta = el.appendChild(document.createElement("div"));
  meta.className = "meta";
  const author = meta.appendChild(document.createElement("span"));
  author.className = "author";
  author.textContent = authorName;
  const state = meta.appendChild(document.createElement("span"));
  state.className = "pending-state";
  state.textContent = "sending…";
  const body = el.appendChild(document.createElement("div"));
  body.className = "body";
  body.textContent = item.body;
  return el;
}
