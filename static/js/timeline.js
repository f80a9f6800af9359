// Each room's messages in id order, de-duplicated by id, changed in place by newer versions;
// and the catch-up cursor over the change log. No DOM here.

// Across server processes a lower seq can arrive after a higher one, by up to about this long
// (the server's broker replay uses the same window): catch-ups start below it.
export const REORDER_WINDOW_MS = 5000;

export function numericId(value) {
  if (value === null || value === undefined || value === "") return null;
  const n = Number(value);
  return Number.isSafeInteger(n) ? n : null;
}

/** The index at which `id` belongs in the ascending array `ids`. */
export function insertionIndex(ids, id) {
  let low = 0;
  let high = ids.length;
  while (low < high) {
    const mid = (low + high) >> 1;
    if (ids[mid] < id) low = mid + 1;
    else high = mid;
  }
  return low;
}

/** One room's messages as the client knows them (message objects, or stubs read from the
 * server-rendered page). */
export class Timeline {
  constructor(room) {
    this.room = room;
    this.ids = [];
    this.byId = new Map();
    this.loaded = false; // its newest history page has been fetched (or rendered in the page)
    this.hasOlder = false;
  }

  has(id) {
    return this.byId.has(id);
  }

  get(id) {
    return this.byId.get(id);
  }

  get size() {
    return this.ids.length;
  }

  lowestId() {
    return this.ids.length > 0 ? this.ids[0] : null;
  }

  highestId() {
    return this.ids.length > 0 ? this.ids[this.ids.length - 1] : null;
  }

  /** Adds a message; `{isNew, nextId}` where nextId is the id it goes before (null: the end).
   * A message already there keeps its place; a newer version of it replaces it. */
  insert(message) {
    const id = numericId(message.id);
    if (id === null) return { isNew: false, nextId: null };
    if (this.byId.has(id)) {
      this.update(message);
      return { isNew: false, nextId: null };
    }
    const index = insertionIndex(this.ids, id);
    this.ids.splice(index, 0, id);
    this.byId.set(id, message);
    return { isNew: true, nextId: index + 1 < this.ids.length ? this.ids[index + 1] : null };
  }

  /** Replaces a known message by a newer version: "replaced", "stale" or "unknown". */
  update(message) {
    const id = numericId(message.id);
    const current = id === null ? undefined : this.byId.get(id);
    if (current === undefined) return "unknown";
    const had = Number(current.version);
    const has = Number(message.version);
    if (Number.isFinite(had) && Number.isFinite(has) && has < had) return "stale";
    if (Number.isFinite(had) && Number.isFinite(has) && has === had && !current.stub) {
      return "stale";
    }
    this.byId.set(id, message);
    return "replaced";
  }

  /** Merges a history or catch-up page; returns the messages that were new. */
  merge(messages) {
    const added = [];
    for (const message of messages) {
      if (this.insert(message).isNew) added.push(message);
    }
    return added;
  }

  /** The newest message `isMine` says is mine and that is not deleted (Up arrow edits it). */
  lastWhere(predicate) {
    for (let i = this.ids.length - 1; i >= 0; i--) {
      const message = this.byId.get(this.ids[i]);
      if (predicate(message)) return message;
    }
    return null;
  }

  clear() {
    this.ids = [];
    this.byId.clear();
    this.loaded = false;
    this.hasOlder = false;
  }
}

/** Every room's timeline, made on first use. */
export class Timelines {
  constructor() {
    this.rooms = new Map();
  }

  get(room) {
    let timeline = this.rooms.get(room);
    if (timeline === undefined) {
      timeline = new Timeline(room);
      this.rooms.set(room, timeline);
    }
    return timeline;
  }

  /** Which room holds message `id`, if any known one does. */
  roomOf(id) {
    for (const [room, timeline] of this.rooms) if (timeline.has(id)) return room;
    return null;
  }

  /** After a "reload" answer: nothing known can be trusted to be complete. */
  forgetAll() {
    for (const timeline of this.rooms.values()) timeline.clear();
  }
}

/**
 * Where a catch-up starts: the highest seq applied long enough ago that nothing lower can
 * still be on its way. Re-fetching the few changes above it is harmless (each is applied once).
 */
export class SeqCursor {
  constructor(start = null, windowMs = REORDER_WINDOW_MS) {
    this.settled = start; // null: not known yet
    this.highest = start;
    this.windowMs = windowMs;
    this.recent = []; // {seq, at}, oldest first
  }

  get known() {
    return this.settled !== null;
  }

  /** The server told us where the log is (bootstrap, a catch-up's cursor, a reload). */
  reset(seq) {
    this.settled = seq;
    this.highest = seq;
    this.recent = [];
  }

  note(seq, now) {
    if (numericId(seq) === null) return;
    this.settle(now);
    if (this.highest === null || seq > this.highest) this.highest = seq;
    this.recent.push({ seq, at: now });
  }

  settle(now) {
    const cutoff = now - this.windowMs;
    while (this.recent.length > 0 && this.recent[0].at <= cutoff) {
      const { seq } = this.recent.shift();
      if (this.settled === null || seq > this.settled) this.settled = seq;
    }
  }

  start(now) {
    this.settle(now);
    return this.settled;
  }
}
