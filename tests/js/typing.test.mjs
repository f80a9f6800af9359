import assert from "node:assert/strict";
import { test } from "node:test";

import { MentionLedger } from "../../static/js/notifications.js";
import { jsonStore } from "../../static/js/storage.js";
import { TypingState, TypingThrottle, typingText } from "../../static/js/typing.js";

const ada = { id: 3, username: "ada", display_name: "Ada" };
const bob = { id: 4, username: "bob", display_name: "Bob" };

const frame = (users, extra = {}) => ({ type: "typing", room: "ops", users, expires_in: 7, ...extra });

test("a typing indicator expires by itself", () => {
  const typing = new TypingState();
  typing.snapshot("ops", frame([ada]), null, 0);
  assert.deepEqual(typing.names("ops", 6999), ["Ada"]);
  assert.equal(typing.nextExpiry("ops"), 7000);
  assert.deepEqual(typing.names("ops", 7000), []);
  assert.equal(typing.nextExpiry("ops"), null);
});

test("a frame replaces the room's typists; their message ends one; rooms are apart", () => {
  const typing = new TypingState();
  typing.snapshot("ops", frame([ada]), null, 0);
  typing.snapshot("ops", frame([ada, bob]), null, 5000);
  assert.deepEqual(typing.names("ops", 9000), ["Ada", "Bob"]);
  assert.deepEqual(typing.names("general", 9000), []);
  typing.stopped("ops", 3);
  assert.deepEqual(typing.names("ops", 9000), ["Bob"]);
  typing.snapshot("ops", frame([ada]), null, 9000); // bob stopped: the frame leaves him out
  assert.deepEqual(typing.names("ops", 9000), ["Ada"]);
});

test("the same frame for everyone: my own typing is not shown to me", () => {
  const typing = new TypingState();
  typing.snapshot("ops", frame([ada, bob], { count: 2 }), 3, 0);
  assert.deepEqual(typing.names("ops", 1), ["Bob"]);
  assert.equal(typingText(typing.names("ops", 1), typing.othersCount("ops", 1)), "Bob is typing…");
});

test("a big room's frame names some and counts the rest", () => {
  const typing = new TypingState();
  typing.snapshot("ops", frame([ada], { count: 12 }), null, 0);
  assert.equal(typing.othersCount("ops", 1), 11);
  assert.equal(typingText(typing.names("ops", 1), typing.othersCount("ops", 1)), "several people are typing…");
  assert.equal(typing.othersCount("ops", 7000), 0);
});

test("a frame of the first version names one person in `user`", () => {
  const typing = new TypingState();
  typing.snapshot("ops", { type: "typing", room: "ops", user: bob, expires_in: 7 }, null, 0);
  assert.deepEqual(typing.names("ops", 1), ["Bob"]);
});

test("what the indicator says", () => {
  assert.equal(typingText([]), "");
  assert.equal(typingText(["ada"]), "ada is typing…");
  assert.equal(typingText(["ada", "bob"]), "ada and bob are typing…");
  assert.equal(typingText(["a", "b", "c"]), "several people are typing…");
  assert.equal(typingText(["a"], 2), "several people are typing…");
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
