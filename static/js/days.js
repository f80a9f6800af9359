// Local days and times for messages: which day a time falls on where the reader is, how to
// name it, and where the separators between days go. No DOM here.

function pad(n) {
  return String(n).padStart(2, "0");
}

/** The reader's local calendar day of `date`, as "YYYY-MM-DD". */
export function dayKey(date) {
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
}

/** "Today", "Yesterday", or the date spelled out by `format` (an Intl.DateTimeFormat). */
export function dayLabel(key, now, format) {
  if (key === dayKey(now)) return "Today";
  const yesterday = new Date(now.getFullYear(), now.getMonth(), now.getDate() - 1);
  if (key === dayKey(yesterday)) return "Yesterday";
  const [year, month, day] = key.split("-").map(Number);
  return format.format(new Date(year, month - 1, day));
}

/** For messages in order, given their day keys (null when unknown): the indexes that start a
 * new day, each needing a separator before it. */
export function dayStarts(keys) {
  const starts = [];
  let previous = null;
  keys.forEach((key, index) => {
    if (key !== null && key !== previous) starts.push(index);
    if (key !== null) previous = key;
  });
  return starts;
}

/** A message's time: today's as a time, other days' with the date. */
export function timeText(when, now, formats) {
  return (dayKey(when) === dayKey(now) ? formats.time : formats.dateTime).format(when);
}
