import assert from "node:assert/strict";
import { test } from "node:test";

import { MentionLedger } from "../../static/js/notifications.js";
import { jsonStore } from "../../static/js/storage.js";
import { TypingState, TypingThrottle, typingText } from "../../static/js/typing.js";

const ada = { id: 3, username: "ada", display_name: "Ada" };
const bob = { id: 4, username: "bob", display_name: "Bob" };

test("a typing indicator expires by itself", () => {
  const typing = new TypingState();
  typing.seen("ops", ada, 7, 0);
  assert.deepEqual(typing.names("ops", 6999), ["Ada"]);
  assert.equal(typing.nextExpiry("ops"), 7000);
  assert.deepEqual(typing.names("ops", 7000), []);
  assert.equal(typing.nextExpiry("ops"), null);
});

test("a refresh extends it; their message ends it; rooms are apart", () => {
  const typing = new TypingState();
  typing.seen("ops", ada, 7, 0);
  typing.seen("ops", ada, 7, 5000);
  typing.seen("ops", bob, 7, 5000);
  assert.deepEqual(typing.names("ops", 9000), ["Ada", "Bob"]);
  assert.deepEqual(typing.names("general", 9000), []);
  typing.stopped("ops", 3);
  assert.deepEqual(typing.names("ops", 9000), ["Bob"]);
});

test("what the indicator says", () => {
  assert.equal(typingText([]), "");
  assert.equal(typingText(["ada"]), "ada is typing…");
  assert.equal(typingText(["ada", "bob"]), "ada and bob are typing…");
  assert.equal(typingText(["a", "b", "c"]), "several people are typing…");
});

test("typing is sent at most every few seconds per room", () => {
  const throttle = new TypingThrottle(3000);
  assert.equal(throttle.shouldSend("ops", 0), true);
  assert.equal(throttle.shouldSend("ops", 2999), false);
  assert.equal(throttle.shouldSend("general", 1000), true);
  assert.equal(throttle.shouldSend("ops", 3000), true);
  throttle.reset("ops");
  assert.equal(throttle.shouldSend("ops", 3001), true);
});

test("a mention is notified once, whichever way it arrives", () => {
  const data = new Map();
  const store = jsonStore({
    getItem: (key) => (data.has(key) ? data.get(key) : null),
    setItem: (key, value) => data.set(key, value),
  });
  const ledger = new MentionLedger({ store, keep: 2 });
  assert.equal(ledger.claim(10), true);
  assert.equal(ledger.claim(10), false);
  assert.equal(new MentionLedger({ store, keep: 2 }).claim(10), false);
  ledger.claim(11);
  ledger.claim(12);
  assert.equal(ledger.claim(10), true); // only the newest are kept
});
