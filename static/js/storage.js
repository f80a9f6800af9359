// localStorage as JSON, for state that should survive a reload. Storage may be missing, full or
// forbidden (private mode): every call then degrades to "nothing stored" and the page works on.

/** A JSON store over a Storage-like object (getItem / setItem). */
export function jsonStore(backend) {
  return {
    get(key, fallback) {
      try {
        const raw = backend.getItem(key);
        return raw === null ? fallback : JSON.parse(raw);
      } catch {
        return fallback;
      }
    },
    set(key, value) {
      try {
        backend.setItem(key, JSON.stringify(value));
      } catch {
        // Private mode or quota: the in-page state still works for this visit.
      }
    },
  };
}

/** The page's localStorage, or a store that keeps nothing when there is none. */
export function browserStore() {
  try {
    return jsonStore(globalThis.localStorage);
  } catch {
    return jsonStore({ getItem: () => null, setItem: () => {} });
  }
}
