import assert from "node:assert/strict";
import { test } from "node:test";

import { reactionTurnsOn, reactionsView } from "../../static/js/actions.js";

const reactions = [
  { emoji: "👍", count: 2, users: [3, 7] },
  { emoji: "🎉", count: 1, users: [9] },
  { emoji: "x", count: 0, users: [] },
];

test("'did I react' comes from the viewer's user id; the same bytes for everyone", () => {
  assert.deepEqual(reactionsView(reactions, 7), [
    { emoji: "👍", count: 2, mine: true },
    { emoji: "🎉", count: 1, mine: false },
  ]);
  assert.deepEqual(
    reactionsView(reactions, null).map((r) => r.mine),
    [false, false],
  );
  assert.deepEqual(reactionsView(undefined, 7), []);
});

test("a click adds a reaction one has not made and takes back one one has", () => {
  assert.equal(reactionTurnsOn(reactions, "👍", 7), false);
  assert.equal(reactionTurnsOn(reactions, "👍", 9), true);
  assert.equal(reactionTurnsOn(reactions, "😮", 7), true);
  assert.equal(reactionTurnsOn([], "👍", 7), true);
});
