// Who is typing in which room, each indicator dropping by itself `expires_in` seconds after its
// last refresh (stuck indicators are a known bug class); and how often this page may say that
// its person is typing. No DOM here.

export const SEND_EVERY_MS = 3000;

export class TypingState {
  constructor() {
    this.rooms = new Map(); // room -> Map(userId -> {name, until})
  }

  /** A typing frame: `user` types in `room` until `expiresIn` seconds from `now`. */
  seen(room, user, expiresIn, now) {
    let users = this.rooms.get(room);
    if (users === undefined) {
      users = new Map();
      this.rooms.set(room, users);
    }
    const seconds = Number(expiresIn) > 0 ? Number(expiresIn) : 7;
    const name = user.display_name || user.username || "someone";
    users.set(Number(user.id), { name, until: now + seconds * 1000 });
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

  /** When the next indicator in `room` expires (ms from epoch), or null. */
  nextExpiry(room) {
    const users = this.rooms.get(room);
    if (users === undefined || users.size === 0) return null;
    return Math.min(...[...users.values()].map((entry) => entry.until));
  }
}

export function typingText(names) {
  if (names.length === 0) return "";
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
