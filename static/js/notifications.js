// Browser notifications for mentions while the tab is hidden: each message at most once (live
// or through a catch-up, in any tab of this browser), permission asked once, from a click.

export const NOTIFIED_KEY = "chat.notifiedMentions";
export const ASKED_KEY = "chat.notificationsAsked";
const KEEP = 300;

/** Which mentions were already notified. No DOM here. */
export class MentionLedger {
  constructor({ store, key = NOTIFIED_KEY, keep = KEEP }) {
    this.store = store;
    this.key = key;
    this.keep = keep;
  }

  /** True the first time for `id` (and records it), false ever after. */
  claim(id) {
    const ids = this.store.get(this.key, []);
    const known = Array.isArray(ids) ? ids : [];
    if (known.includes(id)) return false;
    this.store.set(this.key, [...known, id].slice(-this.keep));
    return true;
  }
}

export class MentionNotifier {
  constructor({ store, onClick }) {
    this.store = store;
    this.ledger = new MentionLedger({ store });
    this.onClick = onClick;
  }

  get supported() {
    return typeof Notification === "function";
  }

  get permitted() {
    return this.supported && Notification.permission === "granted";
  }

  /** Whether to offer the permission prompt: never asked, never answered. */
  get shouldOffer() {
    if (!this.supported || Notification.permission !== "default") return false;
    return !this.store.get(ASKED_KEY, false);
  }

  /** Asks once, from a user gesture (the caller's click handler). */
  async ask() {
    this.store.set(ASKED_KEY, true);
    try {
      await Notification.requestPermission();
    } catch (error) {
      console.warn("chat: notification permission request failed", error);
    }
  }

  /** A message naming this person arrived while the tab is hidden. */
  mention({ id, room, title, body }) {
    if (!this.permitted || !this.ledger.claim(id)) return;
    try {
      const notification = new Notification(title, { body, tag: `chat-m${id}` });
      notification.addEventListener("click", () => {
        window.focus();
        notification.close();
        this.onClick(room, id);
      });
    } catch (error) {
      console.warn("chat: could not show a notification", error);
    }
  }
}
