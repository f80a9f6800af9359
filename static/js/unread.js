// Per-room unread and mention counts. The server's numbers (the room list, `read` frames) are
// the base; messages by others that arrived after that base was counted are added on top, each
// once, so a message seen both live and in a catch-up never counts twice and the counts do not
// drift across reconnects. No DOM here.

function emptyRoom() {
  return {
    unread: 0,
    mentions: 0,
    lastReadId: 0,
    // What the base already counts: messages up to `newestId` (room list), or changes up to
    // `seq` (a `read` frame). One of the two is set.
    newestId: 0,
    seq: null,
    extra: new Map(), // message id -> {seq, mention}
  };
}

export class UnreadState {
  constructor() {
    this.rooms = new Map();
  }

  room(name) {
    let state = this.rooms.get(name);
    if (state === undefined) {
      state = emptyRoom();
      this.rooms.set(name, state);
    }
    return state;
  }

  /** A room as GET /api/rooms describes it. */
  fromList(room) {
    const state = this.room(room.name);
    state.unread = Number(room.unread) || 0;
    state.mentions = Number(room.mentions) || 0;
    state.lastReadId = Math.max(state.lastReadId, Number(room.last_read_id) || 0);
    state.newestId = Number(room.newest_id) || 0;
    state.seq = null;
    this.prune(state);
  }

  /** A `read` frame: the server's counts when the read position moved (from any tab). */
  applyRead(frame) {
    const state = this.room(frame.room);
    const seq = Number(frame.seq);
    if (state.seq !== null && Number.isFinite(seq) && seq < state.seq) return; // older news
    state.unread = Number(frame.unread) || 0;
    state.mentions = Number(frame.mentions) || 0;
    state.lastReadId = Math.max(state.lastReadId, Number(frame.up_to) || 0);
    state.seq = Number.isFinite(seq) ? seq : null;
    if (state.seq === null) state.newestId = state.lastReadId;
    this.prune(state);
  }

  /** This page marked the room read up to `upTo`: nothing up to there is unread any more. */
  markedRead(name, upTo) {
    const state = this.room(name);
    if (upTo <= state.lastReadId && state.unread === 0) return;
    state.lastReadId = Math.max(state.lastReadId, upTo);
    state.unread = 0;
    state.mentions = 0;
    state.newestId = state.lastReadId;
    state.seq = null;
    this.prune(state);
  }

  /** A new message by someone else (live or caught up). True when it changed the counts. */
  noteMessage(name, { id, seq = null, mention = false }) {
    const state = this.room(name);
    if (state.extra.has(id)) return false;
    state.extra.set(id, { seq, mention });
    return this.counted(state, id, state.extra.get(id));
  }

  prune(state) {
    for (const id of state.extra.keys()) if (id <= state.lastReadId) state.extra.delete(id);
  }

  counted(state, id, entry) {
    if (id <= state.lastReadId) return false;
    if (state.seq !== null) return entry.seq !== null && entry.seq > state.seq;
    return id > state.newestId;
  }

  counts(name) {
    const state = this.rooms.get(name);
    if (state === undefined) return { unread: 0, mentions: 0 };
    let unread = state.unread;
    let mentions = state.mentions;
    for (const [id, entry] of state.extra) {
      if (!this.counted(state, id, entry)) continue;
      unread += 1;
      if (entry.mention) mentions += 1;
    }
    return { unread, mentions };
  }

  lastReadId(name) {
    return this.rooms.get(name)?.lastReadId ?? 0;
  }

  total() {
    let sum = 0;
    for (const name of this.rooms.keys()) sum += this.counts(name).unread;
    return sum;
  }

  forget(name) {
    this.rooms.delete(name);
  }
}

/** The tab title with the total unread count in front: "(3) Chat". */
export function titleWithUnread(base, total) {
  return total > 0 ? `(${total}) ${base}` : base;
}
