import assert from "node:assert/strict";
import { test } from "node:test";

import { focusesSearch } from "../../static/js/shortcuts.js";

const plain = { key: "/", ctrlKey: false, metaKey: false, altKey: false, editable: false };

test("'/' on the page focuses the search box", () => {
  assert.equal(focusesSearch({ ...plain, tagName: "BODY" }), true);
  assert.equal(focusesSearch({ ...plain, tagName: "button" }), true);
});

test("'/' typed into a field is just a slash", () => {
  for (const tagName of ["INPUT", "TEXTAREA", "select"]) {
    assert.equal(focusesSearch({ ...plain, tagName }), false, tagName);
  }
  assert.equal(focusesSearch({ ...plain, tagName: "DIV", editable: true }), false);
});

test("other keys and modified slashes are left alone", () => {
  assert.equal(focusesSearch({ ...plain, key: "?", tagName: "BODY" }), false);
  assert.equal(focusesSearch({ ...plain, ctrlKey: true, tagName: "BODY" }), false);
  assert.equal(focusesSearch({ ...plain, metaKey: true, tagName: "BODY" }), false);
});
