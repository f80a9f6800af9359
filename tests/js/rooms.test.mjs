import assert from "node:assert/strict";
import { test } from "node:test";

import { roomFromPath, roomHref } from "../../static/js/rooms.js";

test("a room's URL and back", () => {
  assert.equal(roomHref("ops"), "/r/ops");
  assert.equal(roomFromPath("/r/ops", "general"), "ops");
  assert.equal(roomFromPath("/r/dm-3-7/", "general"), "dm-3-7");
  assert.equal(roomFromPath("/", "general"), "general");
  assert.equal(roomFromPath("/r/", "general"), "general");
  assert.equal(roomFromPath("/dm/ada", "random"), "random");
});
