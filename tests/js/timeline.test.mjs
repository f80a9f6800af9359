import assert from "node:assert/strict";
import { test } from "node:test";

import { SeqCursor, Timeline, Timelines, insertionIndex } from "../../static/js/timeline.js";

test("insertion index in an ascending list", () => {
  assert.equal(insertionIndex([], 5), 0);
  assert.equal(insertionIndex([1, 3, 7], 4), 2);
  assert.equal(insertionIndex([1, 3, 7], 9), 3);
});

test("messages are kept in id order, each once, whatever order they come in", () => {
  const timeline = new Timeline("general");
  assert.deepEqual(timeline.insert({ id: 30 }), { isNew: true, nextId: null });
  assert.deepEqual(timeline.insert({ id: 10 }), { isNew: true, nextId: 30 });
  assert.deepEqual(timeline.insert({ id: 20 }), { isNew: true, nextId: 30 });
  assert.equal(timeline.insert({ id: 20 }).isNew, false);
  assert.deepEqual(timeline.ids, [10, 20, 30]);
  assert.equal(timeline.lowestId(), 10);
  assert.equal(timeline.highestId(), 30);
});

test("a catch-up page merges: only the new ones are returned", () => {
  const timeline = new Timeline("ops");
  timeline.merge([{ id: 1 }, { id: 2 }]);
  const added = timeline.merge([{ id: 2 }, { id: 3 }, { id: 4 }]);
  assert.deepEqual(added.map((m) => m.id), [3, 4]);
  assert.deepEqual(timeline.ids, [1, 2, 3, 4]);
});

test("a newer version replaces, an older or equal one does not; a stub always gives way", () => {
  const timeline = new Timeline("ops");
  timeline.insert({ id: 1, version: 2, body: "b" });
  assert.equal(timeline.update({ id: 1, version: 1, body: "a" }), "stale");
  assert.equal(timeline.update({ id: 1, version: 2, body: "b" }), "stale");
  assert.equal(timeline.update({ id: 1, version: 3, body: "c" }), "replaced");
  assert.equal(timeline.get(1).body, "c");
  assert.equal(timeline.update({ id: 9, version: 1 }), "unknown");
  timeline.insert({ id: 5, stub: true });
  assert.equal(timeline.update({ id: 5, version: 1, body: "full" }), "replaced");
});

test("the last message matching a predicate (Up arrow edits your last)", () => {
  const timeline = new Timeline("ops");
  timeline.merge([
    { id: 1, user: { id: 7 } },
    { id: 2, user: { id: 8 } },
    { id: 3, user: { id: 7 }, deleted: true },
  ]);
  const mine = timeline.lastWhere((m) => m.user?.id === 7 && !m.deleted);
  assert.equal(mine.id, 1);
});

test("timelines per room, and which room holds an id", () => {
  const timelines = new Timelines();
  timelines.get("a").insert({ id: 1 });
  timelines.get("b").insert({ id: 2 });
  assert.equal(timelines.roomOf(2), "b");
  assert.equal(timelines.roomOf(3), null);
  timelines.forgetAll();
  assert.equal(timelines.get("a").size, 0);
});

test("the catch-up cursor starts below changes seen within the reorder window", () => {
  const cursor = new SeqCursor(100, 5000);
  cursor.note(105, 0);
  cursor.note(104, 1000);
  assert.equal(cursor.start(2000), 100);
  assert.equal(cursor.start(5500), 105);
  assert.equal(cursor.start(7000), 105);
  cursor.note(200, 8000); // a catch-up's cursor waits out the window like any seq
  assert.equal(cursor.start(8000), 105);
  assert.equal(cursor.start(13000), 200);
  const unknown = new SeqCursor();
  assert.equal(unknown.known, false);
  unknown.reset(7);
  assert.equal(unknown.start(0), 7);
});
