// The room list in the sidebar: the server's `<nav id="rooms">` when the page has one, else
// built here from GET /api/rooms. Each room shows its unread and mention counts; a click
// switches rooms without a reload.

export function roomHref(name) {
  return `/r/${encodeURIComponent(name)}`;
}

/** The room a location shows: /r/<name>, else the page's own room. */
export function roomFromPath(pathname, fallback) {
  const match = /^\/r\/([^/]+)\/?$/.exec(pathname);
  return match ? decodeURIComponent(match[1]) : fallback;
}

function countText(n) {
  return n > 0 ? (n > 999 ? "999+" : String(n)) : "";
}

export class RoomList {
  constructor({ onOpen }) {
    this.onOpen = onOpen;
    this.nav = document.getElementById("rooms");
    this.built = this.nav === null;
    if (this.built) this.nav = this.build();
    this.list = this.nav.querySelector("ul") || this.nav.appendChild(document.createElement("ul"));
    this.nav.addEventListener("click", (event) => this.onClick(event));
  }

  build() {
    const nav = document.createElement("nav");
    nav.id = "rooms";
    nav.className = "room-list built";
    nav.setAttribute("aria-label", "Rooms");
    const heading = nav.appendChild(document.createElement("h2"));
    heading.className = "room-list-heading";
    heading.textContent = "Rooms";
    nav.appendChild(document.createElement("ul"));
    document.body.classList.add("with-room-list");
    const topbar = document.querySelector(".topbar");
    (topbar ?? document.body.firstChild)?.after(nav);
    // The drawer's handle (narrow screens) goes in the room header: the top bar is full.
    const handleAt = document.getElementById("room-header") ?? topbar;
    if (handleAt !== null) {
      const toggle = document.createElement("button");
      toggle.type = "button";
      toggle.className = "rooms-toggle";
      toggle.textContent = "Rooms";
      toggle.setAttribute("aria-controls", "rooms");
      toggle.setAttribute("aria-expanded", "false");
      toggle.addEventListener("click", () => {
        const open = document.body.classList.toggle("rooms-open");
        toggle.setAttribute("aria-expanded", String(open));
      });
      handleAt.prepend(toggle);
    }
    return nav;
  }

  onClick(event) {
    const link = event.target.closest("li.room a");
    if (link === null || event.button !== 0) return;
    if (event.ctrlKey || event.metaKey || event.shiftKey || event.altKey) return;
    event.preventDefault();
    document.body.classList.remove("rooms-open");
    this.onOpen(link.closest("li.room").dataset.room);
  }

  item(name) {
    return this.list.querySelector(`:scope > li.room[data-room="${CSS.escape(name)}"]`);
  }

  names() {
    return [...this.list.querySelectorAll(":scope > li.room")].map((li) => li.dataset.room);
  }

  ensure(room) {
    let li = this.item(room.name);
    if (li === null) {
      li = document.createElement("li");
      li.className = "room";
      li.dataset.room = room.name;
      const link = li.appendChild(document.createElement("a"));
      link.href = roomHref(room.name);
      for (const kind of ["unread-count", "mention-count"]) {
        const badge = li.appendChild(document.createElement("span"));
        badge.className = kind;
      }
      this.list.append(li);
    }
    if (room.id !== undefined && room.id !== null) li.dataset.roomId = String(room.id);
    li.classList.toggle("dm", room.kind === "dm");
    li.classList.toggle("private", room.visibility === "private");
    const link = li.querySelector("a");
    if (link !== null && room.title) link.textContent = room.title;
    return li;
  }

  /** The rooms the server lists now: new ones added, ones gone removed. */
  update(rooms) {
    const listed = new Set();
    for (const room of rooms) {
      this.ensure(room);
      listed.add(room.name);
    }
    for (const name of this.names()) if (!listed.has(name)) this.item(name)?.remove();
  }

  remove(name) {
    this.item(name)?.remove();
  }

  setCounts(name, { unread, mentions }) {
    const li = this.item(name);
    if (li === null) return;
    const unreadBadge = li.querySelector(".unread-count");
    const mentionBadge = li.querySelector(".mention-count");
    if (unreadBadge) unreadBadge.textContent = countText(unread);
    if (mentionBadge) mentionBadge.textContent = mentions > 0 ? `@${countText(mentions)}` : "";
    li.classList.toggle("has-unread", unread > 0);
    li.classList.toggle("has-mention", mentions > 0);
  }

  setActive(name) {
    for (const li of this.list.querySelectorAll(":scope > li.room")) {
      const active = li.dataset.room === name;
      li.classList.toggle("active", active);
      const link = li.querySelector("a");
      if (link === null) continue;
      if (active) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
  }
}

/** `<header id="room-header">` with the room's title and topic; made when the page has none. */
export class RoomHeader {
  constructor() {
    this.element = document.getElementById("room-header") || this.build();
    this.title = this.part("room-title", "h2");
    this.topic = this.part("room-topic", "p");
    this.presence = this.part("room-presence", "span");
  }

  build() {
    const header = document.createElement("header");
    header.id = "room-header";
    header.className = "room-header built";
    document.getElementById("scroller").before(header);
    return header;
  }

  part(className, tag) {
    let el = this.element.querySelector(`.${className}`);
    if (el === null) {
      el = this.element.appendChild(document.createElement(tag));
      el.className = className;
    }
    return el;
  }

  show(room) {
    this.title.textContent = room.title || room.name;
    this.topic.textContent = room.topic || "";
    this.topic.hidden = !room.topic;
  }

  setPresence(text) {
    this.presence.textContent = text;
    this.presence.hidden = text === "";
  }
}
