import assert from "node:assert/strict";
import { test } from "node:test";

import { UnreadState, titleWithUnread } from "../../static/js/unread.js";

test("the room list is the base; later messages add once each", () => {
  const unread = new UnreadState();
  unread.fromList({ name: "ops", unread: 2, mentions: 1, last_read_id: 10, newest_id: 12 });
  assert.deepEqual(unread.counts("ops"), { unread: 2, mentions: 1 });
  // Already counted by the list (id <= newest_id): no change.
  unread.noteMessage("ops", { id: 12, seq: 50 });
  unread.noteMessage("ops", { id: 13, seq: 51, mention: true });
  unread.noteMessage("ops", { id: 13, seq: 51, mention: true }); // again, through a catch-up
  assert.deepEqual(unread.counts("ops"), { unread: 3, mentions: 2 });
});

test("a read frame resets the base; only changes after it count on top", () => {
  const unread = new UnreadState();
  unread.fromList({ name: "ops", unread: 5, mentions: 0, last_read_id: 0, newest_id: 5 });
  unread.noteMessage("ops", { id: 6, seq: 60 });
  unread.noteMessage("ops", { id: 7, seq: 62 });
  unread.applyRead({ type: "read", room: "ops", seq: 61, up_to: 6, unread: 0, mentions: 0 });
  assert.deepEqual(unread.counts("ops"), { unread: 1, mentions: 0 });
  // An older read frame (a catch-up replaying it) changes nothing.
  unread.applyRead({ type: "read", room: "ops", seq: 40, up_to: 2, unread: 4, mentions: 0 });
  assert.deepEqual(unread.counts("ops"), { unread: 1, mentions: 0 });
});

test("marking read here clears the room; a later message counts again", () => {
  const unread = new UnreadState();
  unread.fromList({ name: "a", unread: 3, mentions: 1, last_read_id: 1, newest_id: 4 });
  unread.fromList({ name: "b", unread: 2, mentions: 0, last_read_id: 1, newest_id: 3 });
  assert.equal(unread.total(), 5);
  unread.markedRead("a", 4);
  assert.deepEqual(unread.counts("a"), { unread: 0, mentions: 0 });
  unread.noteMessage("a", { id: 9, seq: 90 });
  assert.equal(unread.total(), 3);
  assert.equal(unread.lastReadId("a"), 4);
});

test("the tab title carries the total", () => {
  assert.equal(titleWithUnread("Chat", 0), "Chat");
  assert.equal(titleWithUnread("Chat", 3), "(3) Chat");
});
