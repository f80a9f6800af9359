// Messages typed and not yet stored by the server. Kept in storage (they survive a reload and
// other tabs see them), each with a client_id the server de-duplicates on, sent one at a time
// and oldest first: order is kept, and a refusal for now (rate_limited, storage_unavailable)
// pauses everything instead of earning more refusals. No DOM here.

export const OUTBOX_KEY = "chat.outbox";
export const RETRY_DEFAULT_S = 3; // for storage_unavailable and rate_limited without a hint
// Refused for now: the same message goes again later.
export const RETRYABLE = new Set(["rate_limited", "storage_unavailable"]);
// Refused because of who sends, not what: the text goes back to the composer.
export const GIVE_BACK = new Set(["name_taken", "sign_in_required"]);
export const DEFAULT_ROOM = "general";

export function newClientId(crypto = globalThis.crypto) {
  if (crypto && typeof crypto.randomUUID === "function") return crypto.randomUUID();
  const bytes = new Uint8Array(16);
  if (crypto && crypto.getRandomValues) crypto.getRandomValues(bytes);
  else for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(Math.random() * 256);
  return "c-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The socket frame for a queued item. A message to `general` names no room, as a Tornado-era
 * client's, so the frame stays what the server has always accepted. */
export function frameFor(item) {
  const frame = { body: item.body, author: item.author, client_id: item.client_id };
  if (item.room && item.room !== DEFAULT_ROOM) frame.room = item.room;
  if (item.reply_to) frame.reply_to = item.reply_to;
  return frame;
}

export class Outbox {
  /**
   * Each item remembers who queued it (user_id, null for a guest) and is sent only while that
   * person is signed in here: a guest's text never goes out under an account, nor one person's
   * under another's who signs in on the same browser. Read from storage on every change, so
   * two tabs do not overwrite each other.
   */
  constructor({ store, userId, key = OUTBOX_KEY }) {
    this.store = store;
    this.userId = userId;
    this.key = key;
    this.inFlight = null; // client_id sent on this socket and not answered yet
    this.holdUntil = 0; // nothing is sent before this time (ms)
  }

  stored() {
    const items = this.store.get(this.key, []);
    return Array.isArray(items) ? items.filter((i) => i && i.client_id && i.body) : [];
  }

  all() {
    return this.stored().filter((i) => (i.user_id ?? null) === this.userId);
  }

  add(item) {
    const others = this.stored().filter((i) => i.client_id !== item.client_id);
    this.store.set(this.key, [...others, item]);
  }

  remove(clientId) {
    const items = this.stored();
    const kept = items.filter((i) => i.client_id !== clientId);
    // Every message carries someone's client_id: write (and wake other tabs) only on a change.
    if (kept.length !== items.length) this.store.set(this.key, kept);
  }

  get(clientId) {
    return this.all().find((i) => i.client_id === clientId);
  }

  /** What to do now: `{send: item}`, `{waitMs}` while held, or null (nothing to send). */
  next(now) {
    if (this.inFlight !== null) return null;
    const [item] = this.all();
    if (!item) return null;
    if (this.holdUntil > now) return { waitMs: this.holdUntil - now };
    return { send: item };
  }

  sent(clientId) {
    this.inFlight = clientId;
  }

  clearInFlight() {
    this.inFlight = null;
  }

  /** The server has the message with this client_id. True when it was the one in flight. */
  settle(clientId) {
    this.remove(clientId);
    if (clientId !== this.inFlight) return false;
    this.inFlight = null;
    return true;
  }

  /**
   * An error frame: which queued item it is about and what happens to it.
   * `action` is "notice" (about nothing queued), "retry" (held, sent again later), "give_back"
   * (to the composer) or "fail" (shown as not sent); the item leaves the queue unless retried.
   */
  refusal(frame, now) {
    const retryable = RETRYABLE.has(frame.error);
    let clientId = typeof frame.client_id === "string" ? frame.client_id : null;
    // A refusal for now may come before the server read the frame, so without its client_id:
    // with one message in flight it can only be about that one.
    if (clientId === null && retryable) clientId = this.inFlight;
    const item = clientId === null ? undefined : this.get(clientId);
    if (!item) return { action: "notice", clientId, item: null };
    if (clientId === this.inFlight) this.inFlight = null;
    if (retryable) {
      const seconds = Number(frame.retry_after) > 0 ? Number(frame.retry_after) : RETRY_DEFAULT_S;
      this.holdUntil = Math.max(this.holdUntil, now + seconds * 1000);
      return { action: "retry", clientId, item };
    }
    this.remove(clientId);
    return { action: GIVE_BACK.has(frame.error) ? "give_back" : "fail", clientId, item };
  }
}

/** The client_ids this browser sent (a guest's own messages are recognised by them). */
export class OwnClientIds {
  constructor({ store, key = "chat.ownClientIds", keep = 300 }) {
    this.store = store;
    this.key = key;
    this.keep = keep;
    this.ids = new Set(store.get(key, []));
  }

  has(clientId) {
    return this.ids.has(clientId);
  }

  add(clientId) {
    this.ids.add(clientId);
    this.store.set(this.key, [...this.ids].slice(-this.keep));
  }
}
