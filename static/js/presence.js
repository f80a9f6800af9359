// Who is around: "ada is typing…" beside the composer (dropping by itself), how many are online
// in the room shown, and this page's own typing and tab visibility told to the server. All
// ephemeral: never stored, never caught up.

import { TypingState, TypingThrottle, typingText } from "./typing.js";

export class Presence {
  /**
   * @param {object} page  me, header, typingView (element), send(frame), currentRoom(),
   *   isReady()
   */
  constructor(page) {
    this.page = page;
    this.typing = new TypingState();
    this.throttle = new TypingThrottle();
    this.statuses = new Map(); // user id -> status, in the room watched
    this.timer = null;
  }

  /** A keystroke in the composer: "typing", at most every few seconds per room. */
  typed() {
    const room = this.page.currentRoom();
    // An open socket is enough: typing is ephemeral and needs no catch-up first (waiting for
    // one dropped the first keystrokes after a page load).
    if (this.page.me === null || !this.page.isOpen()) return;
    if (this.throttle.shouldSend(room, Date.now())) this.page.send({ type: "typing", room });
  }

  /** A message went out: the next keystroke may say "typing" again at once. */
  sent(room) {
    this.throttle.reset(room);
  }

  onTyping(frame) {
    const me = this.page.me;
    const myId = me === null ? null : me.id;
    this.typing.snapshot(frame.room || "general", frame, myId, Date.now());
    this.render();
  }

  /** That person's message arrived: they stopped typing it. */
  stopped(room, userId) {
    this.typing.stopped(room, userId);
    if (room === this.page.currentRoom()) this.render();
  }

  render() {
    clearTimeout(this.timer);
    const room = this.page.currentRoom();
    const now = Date.now();
    const names = this.typing.names(room, now);
    this.page.typingView.textContent = typingText(names, this.typing.othersCount(room, now));
    const next = this.typing.nextExpiry(room);
    if (next === null) return;
    this.timer = setTimeout(() => this.render(), Math.max(50, next - Date.now()));
  }

  /** Presence is watched in one room at a time: the one shown. */
  watch(room) {
    this.statuses.clear();
    this.page.header.setPresence("");
    if (this.page.me !== null) this.page.send({ type: "watch", room });
  }

  visibility(visible) {
    if (this.page.me === null) return;
    this.page.send({ type: "presence", state: visible ? "visible" : "hidden" });
  }

  onPresence(frame) {
    if (frame.type === "presence_snapshot") {
      if (frame.room !== this.page.currentRoom()) return;
      this.statuses.clear();
      for (const [id, status] of Object.entries(frame.users || {})) {
        this.statuses.set(Number(id), status);
      }
    } else if (frame.users !== undefined) {
      // Several changes of one moment, in one frame.
      for (const [id, status] of Object.entries(frame.users)) this.statuses.set(Number(id), status);
    } else {
      this.statuses.set(Number(frame.user), frame.status);
    }
    const online = [...this.statuses.values()].filter((status) => status !== "offline").length;
    this.page.header.setPresence(online > 0 ? `${online} online` : "");
  }
}
