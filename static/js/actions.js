// What one can do to a message: the hover (or long-press) toolbar with reply, react, edit and
// delete; the emoji picker; the reactions row under a message; the inline editor. Everything is
// built with textContent; what happens is the caller's (callbacks).

import { numericId } from "./timeline.js";

// A small picker; the server takes any single emoji, so one added elsewhere shows here too.
export const EMOJI = ["👍", "❤️", "😂", "🎉", "😮", "😢", "🙏", "👀"];
const LONG_PRESS_MS = 500;
const HIDE_DELAY_MS = 400;

/** The reactions of a message as this viewer sees them ("did I react" from the user id). */
export function reactionsView(reactions, myId) {
  if (!Array.isArray(reactions)) return [];
  return reactions
    .filter((r) => r && typeof r.emoji === "string" && Number(r.count) > 0)
    .map((r) => ({
      emoji: r.emoji,
      count: Number(r.count),
      mine: myId !== null && Array.isArray(r.users) && r.users.map(Number).includes(myId),
    }));
}

/** Whether toggling `emoji` adds (true) or takes back (false) this viewer's reaction. */
export function reactionTurnsOn(reactions, emoji, myId) {
  return !reactionsView(reactions, myId).some((r) => r.emoji === emoji && r.mine);
}

/** The row of reactions under a message (none when there are none). */
export function renderReactions(el, reactions, myId) {
  el.querySelector(":scope > .reactions")?.remove();
  const view = reactionsView(reactions, myId);
  if (view.length === 0) return;
  const row = document.createElement("div");
  row.className = "reactions";
  for (const reaction of view) {
    const button = row.appendChild(document.createElement("button"));
    button.type = "button";
    button.className = reaction.mine ? "reaction mine" : "reaction";
    button.dataset.emoji = reaction.emoji;
    button.setAttribute("aria-pressed", String(reaction.mine));
    const emoji = button.appendChild(document.createElement("span"));
    emoji.className = "reaction-emoji";
    emoji.textContent = reaction.emoji;
    const count = button.appendChild(document.createElement("span"));
    count.className = "reaction-count";
    count.textContent = String(reaction.count);
  }
  el.append(row);
}

function button(parent, action, label, text) {
  const el = parent.appendChild(document.createElement("button"));
  el.type = "button";
  el.dataset.action = action;
  el.title = label;
  el.setAttribute("aria-label", label);
  el.textContent = text;
  return el;
}

/** One toolbar for every message, placed over the message pointed at (never inside it). */
export class MessageActions {
  constructor({ container, allowed, act }) {
    this.container = container;
    this.allowed = allowed; // (el) -> {edit, delete}
    this.act = act; // (action, el, detail)
    this.target = null;
    this.hideTimer = null;
    this.pressTimer = null;
    this.toolbar = this.build();
    this.listen();
  }

  build() {
    const toolbar = document.createElement("div");
    toolbar.id = "message-actions";
    toolbar.className = "message-actions";
    toolbar.setAttribute("role", "toolbar");
    toolbar.setAttribute("aria-label", "Message actions");
    toolbar.hidden = true;
    button(toolbar, "reply", "Reply", "↩");
    button(toolbar, "react", "React", "☺");
    button(toolbar, "edit", "Edit", "✎");
    button(toolbar, "delete", "Delete", "🗑");
    const picker = toolbar.appendChild(document.createElement("div"));
    picker.id = "emoji-picker";
    picker.className = "emoji-picker";
    picker.hidden = true;
    for (const emoji of EMOJI) {
      button(picker, "emoji", `React ${emoji}`, emoji).dataset.emoji = emoji;
    }
    document.body.append(toolbar);
    return toolbar;
  }

  listen() {
    this.container.addEventListener("mouseover", (event) => {
      const el = event.target.closest(".message");
      if (el !== null && this.container.contains(el)) this.show(el);
    });
    this.container.addEventListener("mouseleave", () => this.hideSoon());
    this.container.addEventListener("touchstart", (event) => this.pressStart(event), {
      passive: true,
    });
    for (const type of ["touchend", "touchmove", "touchcancel"]) {
      this.container.addEventListener(type, () => clearTimeout(this.pressTimer), { passive: true });
    }
    this.container.addEventListener("click", (event) => this.onReactionClick(event));
    this.toolbar.addEventListener("mouseenter", () => clearTimeout(this.hideTimer));
    this.toolbar.addEventListener("mouseleave", () => this.hideSoon());
    this.toolbar.addEventListener("click", (event) => this.onToolbarClick(event));
    document.addEventListener("keydown", (event) => {
      if (event.key === "Escape") this.hide();
    });
  }

  pressStart(event) {
    const el = event.target.closest(".message");
    if (el === null) return;
    clearTimeout(this.pressTimer);
    this.pressTimer = setTimeout(() => this.show(el), LONG_PRESS_MS);
  }

  show(el) {
    clearTimeout(this.hideTimer);
    if (el.dataset.deleted === "true" || elIsEditing(el)) {
      this.hide();
      return;
    }
    if (this.target !== el) this.toolbar.querySelector("#emoji-picker").hidden = true;
    this.target = el;
    const allowed = this.allowed(el);
    this.toolbar.querySelector('[data-action="edit"]').hidden = !allowed.edit;
    this.toolbar.querySelector('[data-action="delete"]').hidden = !allowed.delete;
    this.toolbar.querySelector('[data-action="reply"]').hidden = !allowed.reply;
    this.toolbar.querySelector('[data-action="react"]').hidden = !allowed.react;
    this.toolbar.hidden = false;
    this.place();
  }

  place() {
    if (this.target === null || !this.target.isConnected) return this.hide();
    const anchor = this.target.querySelector(":scope > .body") ?? this.target;
    const box = anchor.getBoundingClientRect();
    const width = this.toolbar.offsetWidth;
    const left = Math.max(4, Math.min(window.innerWidth - width - 4, box.right - width));
    this.toolbar.style.left = `${left}px`;
    this.toolbar.style.top = `${Math.max(4, box.top - this.toolbar.offsetHeight + 6)}px`;
    return undefined;
  }

  hideSoon() {
    clearTimeout(this.hideTimer);
    this.hideTimer = setTimeout(() => this.hide(), HIDE_DELAY_MS);
  }

  hide() {
    clearTimeout(this.hideTimer);
    this.toolbar.hidden = true;
    this.toolbar.querySelector("#emoji-picker").hidden = true;
    this.target = null;
  }

  onToolbarClick(event) {
    const pressed = event.target.closest("button[data-action]");
    const el = this.target;
    if (pressed === null || el === null) return;
    const action = pressed.dataset.action;
    if (action === "react") {
      const picker = this.toolbar.querySelector("#emoji-picker");
      picker.hidden = !picker.hidden;
      this.place();
      return;
    }
    this.hide();
    if (action === "emoji") this.act("react", el, pressed.dataset.emoji);
    else this.act(action, el, null);
  }

  onReactionClick(event) {
    const pressed = event.target.closest(".reactions button.reaction");
    if (pressed === null) return;
    const el = pressed.closest(".message");
    if (el !== null && this.allowed(el).react) this.act("react", el, pressed.dataset.emoji);
  }
}

function elIsEditing(el) {
  return el.querySelector(":scope > .inline-editor") !== null;
}

/** Edits a message in place: Enter saves, Shift+Enter is a new line, Esc cancels. */
export function startInlineEdit(el, text, { onSave, maxChars }) {
  if (elIsEditing(el)) {
    el.querySelector(":scope > .inline-editor textarea").focus();
    return;
  }
  const body = el.querySelector(":scope > .body");
  const form = document.createElement("form");
  form.className = "inline-editor";
  const field = form.appendChild(document.createElement("textarea"));
  field.value = text;
  field.rows = Math.min(8, text.split("\n").length + 1);
  field.maxLength = maxChars;
  field.setAttribute("aria-label", "Edit message");
  const hint = form.appendChild(document.createElement("span"));
  hint.className = "inline-editor-hint";
  hint.textContent = "Enter to save, Esc to cancel";
  if (body) body.hidden = true;
  el.append(form);
  const close = () => {
    form.remove();
    if (body) body.hidden = false;
  };
  const save = async () => {
    const value = field.value;
    if (value.trim() === "" || value === text) return close();
    field.disabled = true;
    try {
      await onSave(value);
      close();
    } catch {
      field.disabled = false;
      field.focus();
    }
    return undefined;
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    save();
  });
  field.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      event.preventDefault();
      event.stopPropagation();
      close();
    } else if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      save();
    }
  });
  field.focus();
  field.setSelectionRange(field.value.length, field.value.length);
}

export function messageIdOf(el) {
  return numericId(el.dataset.id ?? el.id.replace(/^m/, ""));
}
