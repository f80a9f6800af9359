// Who is typing in which room, each indicator dropping by itself `expires_in` seconds after its
// last refresh (stuck indicators are a known bug class); and how often this page may say that
// its person is typing. No DOM here.

export const SEND_EVERY_MS = 3000;

export class TypingState {
  constructor() {
    this.rooms = new Map(); // room -> Map(userId -> {name, until})
    this.unnamed = new Map(); // room -> {count, until}: typists a big room's frame only counts
  }

  /**
   * A typing frame: who is typing in `frame.room` now, each until `expires_in` seconds from
   * `now`. It replaces what the room had: whoever it leaves out stopped. `myId` is left out:
   * the frame is the same for everyone in the room, typists included.
   */
  snapshot(room, frame, myId, now) {
    const seconds = Number(frame.expires_in) > 0 ? Number(frame.expires_in) : 7;
    const until = now + seconds * 1000;
    const named = Array.isArray(frame.users) ? frame.users : frame.user ? [frame.user] : [];
    const users = new Map();
    for (const user of named) {
      const id = Number(user.id);
      if (id === myId) continue;
      users.set(id, { name: user.display_name || user.username || "someone", until });
    }
    this.rooms.set(room, users);
    const count = Number(frame.count) > named.length ? Number(frame.count) : named.length;
    this.unnamed.set(room, { count: count - named.length, until });
  }

  /** That person's message arrived: they stopped typing it. */
  stopped(room, userId) {
    this.rooms.get(room)?.delete(Number(userId));
  }

  names(room, now) {
    const users = this.rooms.get(room);
    if (users === undefined) return [];
    for (const [id, entry] of users) if (entry.until <= now) users.delete(id);
    return [...users.values()].map((entry) => entry.name);
  }

  /** How many more are typing in `room` than the frame could name. */
  othersCount(room, now) {
    const unnamed = this.unnamed.get(room);
    return unnamed !== undefined && unnamed.until > now ? unnamed.count : 0;
  }

  /** When the next indicator in `room` expires (ms from epoch), or null. */
  nextExpiry(room) {
    const users = this.rooms.get(room);
    if (users === undefined || users.size === 0) return null;
    return Math.min(...[...users.values()].map((entry) => entry.until));
  }
}

export function typingText(names, others = 0) {
  if (names.length === 0 && others === 0) return "";
  if (names.length + others >= 3) return "several people are typing…";
  if (names.length === 1) return `${names[0]} is typing…`;
  if (names.length === 2) return `${names[0]} and ${names[1]} are typing…`;
  return "several people are typing…";
}

/** At most one "typing" per room every SEND_EVERY_MS. */
export class TypingThrottle {
  constructor(everyMs = SEND_EVERY_MS) {
    this.everyMs = everyMs;
    this.last = new Map();
  }

  shouldSend(room, now) {
    const last = this.last.get(room);
    if (last !== undefined && now - last < this.everyMs) return false;
    this.last.set(room, now);
    return true;
  }

  /** A message was sent: the next keystroke may say "typing" again at once. */
  reset(room) {
    this.last.delete(room);
  }
}
