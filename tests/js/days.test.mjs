import assert from "node:assert/strict";
import { test } from "node:test";

import { dayKey, dayLabel, dayStarts, timeText } from "../../static/js/days.js";

const format = { format: (date) => `day ${date.getDate()}` };

test("a day key is the local calendar day", () => {
  assert.equal(dayKey(new Date(2026, 0, 5, 23, 59)), "2026-01-05");
});

test("today, yesterday, else the date", () => {
  const now = new Date(2026, 2, 1, 10, 0);
  assert.equal(dayLabel("2026-03-01", now, format), "Today");
  assert.equal(dayLabel("2026-02-28", now, format), "Yesterday");
  assert.equal(dayLabel("2026-02-20", now, format), "day 20");
});

test("a separator before the first message of each day", () => {
  assert.deepEqual(dayStarts([]), []);
  assert.deepEqual(dayStarts(["d1", "d1", "d2", null, "d2", "d3"]), [0, 2, 5]);
});

test("times of today without the date, others with it", () => {
  const formats = { time: { format: () => "time" }, dateTime: { format: () => "date+time" } };
  const now = new Date(2026, 2, 1, 10, 0);
  assert.equal(timeText(new Date(2026, 2, 1, 8, 0), now, formats), "time");
  assert.equal(timeText(new Date(2026, 1, 1, 8, 0), now, formats), "date+time");
});
