// Catching up: after the first open, where the change log is and what the page's own room
// missed since it was rendered; after every later open (or the tab coming back), every change
// in every room since the cursor with one GET /api/events, applied as if live; a "reload"
// answer starts the rooms over. A catch-up that fails drops the socket: a gap is never kept.

import { numericId } from "./timeline.js";

const CATCH_UP_LIMIT = 200;

export class Sync {
  /**
   * @param {object} page  api, cursor, timelines, currentRoom(), listenedRooms(),
   *   isCurrent(ws), abandon(), showMessage(message, options), applyFrame(frame),
   *   startOver() (a reload answer: forget the rooms, reload the one shown), refreshRooms(),
   *   onCaughtUp()
   */
  constructor(page) {
    this.page = page;
    this.running = null; // {ws, promise}: one catch-up per socket at a time
  }

  catchUp(ws) {
    if (this.running !== null && this.running.ws === ws) return this.running.promise;
    const promise = this.run(ws);
    this.running = { ws, promise };
    return promise;
  }

  async run(ws) {
    const page = this.page;
    try {
      if (page.cursor.known) await this.events(ws);
      else await this.first(ws);
    } catch (error) {
      if (!page.isCurrent(ws)) return;
      // Without the missed changes the page would have a gap: start over.
      console.warn("chat: catch-up failed, reconnecting", error);
      page.abandon();
      return;
    } finally {
      if (this.running?.ws === ws) this.running = null;
    }
    if (page.isCurrent(ws)) page.onCaughtUp();
  }

  /** The page was rendered from message ids, not the log: ask the log where it is, then
   * fetch the page's room from below its first message (the rendering lacks reactions). */
  async first(ws) {
    const { api, cursor, timelines } = this.page;
    cursor.reset(await api.newestSeq(this.page.listenedRooms()));
    const room = this.page.currentRoom();
    let after = Math.max(0, (timelines.get(room).lowestId() ?? 1) - 1);
    for (;;) {
      const page = await api.messages(room, { after, limit: CATCH_UP_LIMIT });
      if (!this.page.isCurrent(ws)) return;
      for (const message of page.messages) this.page.showMessage(message, { room });
      if (!page.has_newer) break;
      const next = numericId(page.newer_cursor);
      if (next === null || next <= after) break;
      after = next;
    }
    this.page.refreshRooms();
  }

  /** Every change in every room since the cursor, in one request (a page at a time). */
  async events(ws) {
    const { api, cursor } = this.page;
    // Read synchronously: frames arriving during the catch-up must not move its start.
    let after = cursor.start(Date.now());
    for (;;) {
      const rooms = this.page.listenedRooms();
      const answer = await api.events(after, { limit: CATCH_UP_LIMIT, rooms });
      if (!this.page.isCurrent(ws)) return;
      if (answer.reload) {
        cursor.reset(numericId(answer.cursor) ?? 0);
        await this.page.startOver();
        return;
      }
      for (const frame of answer.events) this.page.applyFrame(frame);
      const next = numericId(answer.cursor);
      if (next !== null) cursor.note(next, Date.now());
      if (!answer.has_more || next === null || next <= after) break;
      after = next;
    }
  }
}
