// Keyboard shortcuts every page shares: "/" focuses the search box (as in Slack, GitHub and
// Zulip), unless the person is typing somewhere already. Loaded by base.html on every page.

const TYPING_TAGS = new Set(["INPUT", "TEXTAREA", "SELECT"]);

/** Whether a keydown should move focus to the search box (pure: a plain description of it). */
export function focusesSearch({ key, ctrlKey, metaKey, altKey, tagName, editable }) {
  if (key !== "/" || ctrlKey || metaKey || altKey) return false;
  return !TYPING_TAGS.has(String(tagName).toUpperCase()) && !editable;
}

function install(doc) {
  const box = doc.getElementById("search-box");
  if (box === null) return;
  doc.addEventListener("keydown", (event) => {
    const target = event.target instanceof Element ? event.target : doc.body;
    const wanted = focusesSearch({
      key: event.key,
      ctrlKey: event.ctrlKey,
      metaKey: event.metaKey,
      altKey: event.altKey,
      tagName: target.tagName,
      editable: target.isContentEditable === true,
    });
    if (!wanted) return;
    event.preventDefault();
    box.focus();
    box.select();
  });
}

if (typeof document !== "undefined") install(document);
