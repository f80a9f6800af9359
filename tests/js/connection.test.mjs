import assert from "node:assert/strict";
import { test } from "node:test";

import {
  BACKOFF_CAP_MS,
  CLOSE_REVOKED,
  Connection,
  backoffDelay,
  waitingStatus,
} from "../../static/js/connection.js";

test("backoff doubles from 500 ms, jittered between half and all, capped at 10 s", () => {
  assert.equal(backoffDelay(1, () => 0), 250);
  assert.equal(backoffDelay(1, () => 1), 500);
  assert.equal(backoffDelay(3, () => 1), 2000);
  assert.equal(backoffDelay(20, () => 1), BACKOFF_CAP_MS);
  assert.equal(backoffDelay(20, () => 0), BACKOFF_CAP_MS / 2);
});

test("the status says offline after three failures or when the browser is offline", () => {
  assert.equal(waitingStatus(1, true).state, "connecting");
  assert.equal(waitingStatus(3, true).state, "offline");
  assert.equal(waitingStatus(1, false).state, "offline");
});

class FakeSocket {
  constructor(url) {
    this.url = url;
    this.readyState = 0;
    this.listeners = {};
    this.sent = [];
    this.closed = false;
  }
  addEventListener(type, listener) {
    (this.listeners[type] ||= []).push(listener);
  }
  emit(type, event = {}) {
    if (type === "open") this.readyState = 1;
    for (const listener of this.listeners[type] || []) listener(event);
  }
  send(data) {
    this.sent.push(JSON.parse(data));
  }
  close() {
    this.closed = true;
  }
}

function fakeTimers() {
  const pending = new Map();
  let next = 1;
  return {
    pending,
    setTimeout(fn, ms) {
      pending.set(next, { fn, ms });
      return next++;
    },
    clearTimeout(id) {
      pending.delete(id);
    },
    runAll() {
      const due = [...pending.entries()];
      pending.clear();
      for (const [, { fn }] of due) fn();
    },
  };
}

function harness() {
  const sockets = [];
  const timers = fakeTimers();
  const log = { opens: 0, frames: [], statuses: [], signedOut: 0, closed: 0 };
  const connection = new Connection({
    url: () => "ws://x/chatsocket",
    createSocket: (url) => {
      const ws = new FakeSocket(url);
      sockets.push(ws);
      return ws;
    },
    timers,
    random: () => 1,
    onOpen: () => log.opens++,
    onFrame: (frame) => log.frames.push(frame),
    onStatus: (state) => log.statuses.push(state),
    onClosed: () => log.closed++,
    onSignedOut: () => log.signedOut++,
  });
  return { connection, sockets, timers, log };
}

test("connects, passes JSON frames on and ignores what is not JSON", () => {
  const { connection, sockets, log } = harness();
  connection.connect();
  sockets[0].emit("open");
  sockets[0].emit("message", { data: '{"type":"message","id":1}' });
  sockets[0].emit("message", { data: "not json" });
  assert.equal(log.opens, 1);
  assert.deepEqual(log.frames, [{ type: "message", id: 1 }]);
  assert.deepEqual(log.statuses, ["connecting", "connected"]);
  assert.equal(connection.send({ body: "hi" }), true);
  assert.deepEqual(sockets[0].sent, [{ body: "hi" }]);
});

test("a close schedules one reconnect with backoff; the new socket replaces the old", () => {
  const { connection, sockets, timers, log } = harness();
  connection.connect();
  sockets[0].emit("open");
  sockets[0].emit("close", { code: 1012 });
  assert.equal(log.closed, 1);
  assert.equal(connection.send({ body: "x" }), false);
  const waits = [...timers.pending.values()].map((t) => t.ms);
  assert.ok(waits.includes(500), waits);
  timers.runAll();
  assert.equal(sockets.length, 2);
  // Events from the old socket no longer count.
  sockets[0].emit("message", { data: '{"id":9}' });
  assert.deepEqual(log.frames, []);
});

test("4401 means signed out: no reconnect", () => {
  const { connection, sockets, timers, log } = harness();
  connection.connect();
  sockets[0].emit("open");
  sockets[0].emit("close", { code: CLOSE_REVOKED });
  assert.equal(log.signedOut, 1);
  timers.runAll();
  connection.reconnectNow();
  assert.equal(sockets.length, 1);
});

test("abandon closes the socket, ignores its late close and reconnects once", () => {
  const { connection, sockets, timers } = harness();
  connection.connect();
  sockets[0].emit("open");
  connection.abandon();
  assert.equal(sockets[0].closed, true);
  sockets[0].emit("close", { code: 1006 });
  assert.equal(connection.failures, 1);
  timers.runAll();
  assert.equal(sockets.length, 2);
});
