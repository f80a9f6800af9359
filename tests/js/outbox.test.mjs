import assert from "node:assert/strict";
import { test } from "node:test";

import { Outbox, OwnClientIds, frameFor, newClientId } from "../../static/js/outbox.js";
import { jsonStore } from "../../static/js/storage.js";

function memoryStore() {
  const data = new Map();
  return jsonStore({
    getItem: (key) => (data.has(key) ? data.get(key) : null),
    setItem: (key, value) => data.set(key, value),
  });
}

function item(clientId, extra = {}) {
  return { client_id: clientId, body: `text ${clientId}`, author: "", user_id: 7, ...extra };
}

test("items are per person and leave once settled", () => {
  const store = memoryStore();
  const mine = new Outbox({ store, userId: 7 });
  const guest = new Outbox({ store, userId: null });
  mine.add(item("a"));
  guest.add(item("g", { user_id: null }));
  assert.deepEqual(mine.all().map((i) => i.client_id), ["a"]);
  assert.deepEqual(guest.all().map((i) => i.client_id), ["g"]);
  mine.remove("a");
  assert.deepEqual(mine.all(), []);
  assert.equal(guest.all().length, 1);
});

test("one message in flight at a time, oldest first", () => {
  const outbox = new Outbox({ store: memoryStore(), userId: 7 });
  outbox.add(item("a"));
  outbox.add(item("b"));
  assert.equal(outbox.next(0).send.client_id, "a");
  outbox.sent("a");
  assert.equal(outbox.next(0), null);
  assert.equal(outbox.settle("a"), true);
  assert.equal(outbox.next(0).send.client_id, "b");
  assert.equal(outbox.settle("zzz"), false);
});

test("a refusal for now holds the queue and keeps the message", () => {
  const outbox = new Outbox({ store: memoryStore(), userId: 7 });
  outbox.add(item("a"));
  outbox.sent("a");
  // Without a client_id it is about the message in flight.
  const refusal = outbox.refusal({ type: "error", error: "rate_limited", retry_after: 2 }, 1000);
  assert.equal(refusal.action, "retry");
  assert.equal(refusal.clientId, "a");
  assert.equal(outbox.inFlight, null);
  assert.deepEqual(outbox.next(2000), { waitMs: 1000 });
  assert.equal(outbox.next(3000).send.client_id, "a");
});

test("a refusal for good removes the message; one about who sends gives it back", () => {
  const outbox = new Outbox({ store: memoryStore(), userId: 7 });
  outbox.add(item("a"));
  outbox.add(item("b"));
  assert.equal(outbox.refusal({ error: "body_too_long", client_id: "a" }, 0).action, "fail");
  assert.equal(outbox.refusal({ error: "name_taken", client_id: "b" }, 0).action, "give_back");
  assert.deepEqual(outbox.all(), []);
  assert.equal(outbox.refusal({ error: "invalid_json" }, 0).action, "notice");
});

test("frames name their room except general, and their reply", () => {
  assert.deepEqual(frameFor(item("a", { room: "general" })), {
    body: "text a",
    author: "",
    client_id: "a",
  });
  assert.deepEqual(frameFor(item("b", { room: "ops", reply_to: 4 })), {
    body: "text b",
    author: "",
    client_id: "b",
    room: "ops",
    reply_to: 4,
  });
});

test("client ids without crypto.randomUUID", () => {
  const id = newClientId({ getRandomValues: (bytes) => bytes.fill(171) });
  assert.equal(id, "c-" + "ab".repeat(16));
  assert.match(newClientId({}), /^c-[0-9a-f]{32}$/);
});

test("own client ids are remembered, the newest kept", () => {
  const store = memoryStore();
  const own = new OwnClientIds({ store, keep: 2 });
  own.add("a");
  own.add("b");
  own.add("c");
  const again = new OwnClientIds({ store, keep: 2 });
  assert.equal(again.has("a"), false);
  assert.equal(again.has("c"), true);
});
