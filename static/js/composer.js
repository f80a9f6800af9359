// The message form: the counter, Enter to send (Shift+Enter for a new line), what the next
// message replies to, Up arrow to edit one's last message, "typing" while typing; the pending
// view of what was typed and not yet stored, and giving refused text back to the field.

import { pendingElement } from "./render.js";

/** Code points, as the server counts them. */
export function charCount(text) {
  let n = 0;
  for (const _ of text) n++;
  return n;
}

export class Composer {
  /**
   * @param {object} options
   * @param {HTMLFormElement|null} options.form  absent where a guest may only read
   * @param {number} options.maxChars
   * @param {(body: string, replyTo: number|null) => void} options.onSubmit
   * @param {(text: string) => void} options.notify
   * @param {() => boolean} [options.onEditLast]  Up arrow in the empty field; true if it did
   * @param {() => void} [options.onTyping]
   */
  constructor({ form, maxChars, onSubmit, notify, onEditLast, onTyping }) {
    this.form = form;
    this.maxChars = maxChars;
    this.onSubmit = onSubmit;
    this.notify = notify;
    this.onEditLast = onEditLast || (() => false);
    this.onTyping = onTyping || (() => {});
    this.replyTo = null;
    this.replyView = null;
    this.input = document.getElementById("message");
    this.authorInput = document.getElementById("author");
    this.counter = document.getElementById("counter");
    this.formError = document.getElementById("form-error");
    if (form === null) return;
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
    this.input.addEventListener("keydown", (event) => this.onKeyDown(event));
    this.input.addEventListener("input", () => {
      this.updateCounter();
      if (this.input.value.trim() !== "") this.onTyping();
    });
  }

  onKeyDown(event) {
    if (event.isComposing) return;
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      this.submit();
    } else if (event.key === "Escape" && this.replyTo !== null) {
      event.preventDefault();
      this.clearReply();
    } else if (event.key === "ArrowUp" && this.input.value === "" && this.onEditLast()) {
      event.preventDefault();
    }
  }

  /** The next message answers `message` ({id, author, excerpt}); shown above the field. */
  setReply({ id, author, excerpt }) {
    if (!this.enabled) return;
    this.replyTo = id;
    const view = this.replyPreview();
    view.querySelector(".reply-preview-author").textContent = author;
    view.querySelector(".reply-preview-excerpt").textContent = excerpt;
    view.hidden = false;
    this.input.focus();
  }

  clearReply() {
    this.replyTo = null;
    if (this.replyView !== null) this.replyView.hidden = true;
  }

  replyPreview() {
    if (this.replyView !== null) return this.replyView;
    const view = document.createElement("div");
    view.id = "reply-preview";
    view.className = "reply-preview";
    const label = view.appendChild(document.createElement("span"));
    label.className = "reply-preview-label";
    label.textContent = "Replying to ";
    const author = view.appendChild(document.createElement("strong"));
    author.className = "reply-preview-author";
    const excerpt = view.appendChild(document.createElement("span"));
    excerpt.className = "reply-preview-excerpt";
    const cancel = view.appendChild(document.createElement("button"));
    cancel.type = "button";
    cancel.className = "reply-preview-cancel";
    cancel.setAttribute("aria-label", "Cancel the reply");
    cancel.textContent = "×";
    cancel.addEventListener("click", () => this.clearReply());
    const row = this.form.querySelector(".composer-row");
    (row ?? this.input).before(view);
    this.replyView = view;
    return view;
  }

  /** Where typing indicators go: beside the counter, so nothing moves when they change. */
  typingView() {
    let view = document.getElementById("typing");
    if (view === null) {
      view = document.createElement("span");
      view.id = "typing";
      view.className = "typing";
      view.setAttribute("aria-live", "polite");
      const meta = this.form?.querySelector(".composer-meta");
      if (meta) meta.insertBefore(view, this.counter);
      else document.getElementById("scroller").after(view);
    }
    return view;
  }

  get enabled() {
    return this.form !== null;
  }

  authorName() {
    return this.authorInput ? this.authorInput.value.trim() : "";
  }

  updateCounter() {
    if (!this.enabled) return;
    const used = charCount(this.input.value);
    const left = this.maxChars - used;
    this.counter.textContent = used === 0 ? "" : `${used} / ${this.maxChars}`;
    this.counter.classList.toggle("near", left < this.maxChars * 0.1);
    this.counter.classList.toggle("over", left < 0);
    this.input.setAttribute("aria-invalid", left < 0 ? "true" : "false");
  }

  submit() {
    const body = this.input.value;
    if (body.trim() === "") return;
    const used = charCount(body);
    if (used > this.maxChars) {
      this.notify(`That message is too long: ${used} characters, the limit is ${this.maxChars}.`);
      return;
    }
    this.onSubmit(body, this.replyTo);
    this.clearReply();
    this.input.value = "";
    this.updateCounter();
    if (this.formError) {
      this.formError.remove();
      this.formError = null;
    }
  }

  /** Whether the field holds something typed and not sent. */
  get busy() {
    return this.enabled && this.input.value.trim() !== "";
  }

  /** Puts refused text back, to send again (under another name, or once signed in). */
  giveBack(text, { focusName = false } = {}) {
    this.input.value = text;
    this.updateCounter();
    (focusName && this.authorInput ? this.authorInput : this.input).focus();
  }
}

/** The #outbox view: one element per queued message of the room shown. */
export class PendingView {
  constructor({ element, authorName, onChange }) {
    this.element = element;
    this.authorName = authorName;
    this.onChange = onChange || (() => {});
  }

  find(clientId) {
    return this.element.querySelector(`[data-client-id="${CSS.escape(clientId)}"]`);
  }

  show(item) {
    let el = this.find(item.client_id);
    if (el) return el;
    el = pendingElement(item, this.authorName(item));
    this.element.append(el);
    this.onChange();
    return el;
  }

  setState(clientId, text) {
    const state = this.find(clientId)?.querySelector(".pending-state");
    if (state) state.textContent = text;
  }

  /** Stored: the pending element goes (a failed one stays until dismissed). */
  settle(clientId) {
    const el = this.find(clientId);
    if (el && !el.classList.contains("failed")) el.remove();
  }

  remove(clientId) {
    this.find(clientId)?.remove();
  }

  /** Refused for good: marked, with Edit (back to the composer) and Dismiss. */
  fail(clientId, detail, composer) {
    const el = this.find(clientId);
    if (!el) return;
    el.classList.add("failed");
    el.querySelector(".pending-state").textContent = "not sent";
    let error = el.querySelector(".pending-error");
    if (!error) {
      error = el.appendChild(document.createElement("div"));
      error.className = "pending-error";
      const text = error.appendChild(document.createElement("span"));
      text.className = "pending-error-text";
      const edit = error.appendChild(document.createElement("button"));
      edit.type = "button";
      edit.textContent = "Edit";
      edit.addEventListener("click", () => {
        composer.giveBack(el.querySelector(".body").textContent);
        el.remove();
      });
      const dismiss = error.appendChild(document.createElement("button"));
      dismiss.type = "button";
      dismiss.textContent = "Dismiss";
      dismiss.addEventListener("click", () => el.remove());
    }
    error.querySelector(".pending-error-text").textContent = detail;
  }

  /** Keeps only the elements of queued items (another tab may have sent some). */
  keepOnly(clientIds) {
    for (const el of this.element.querySelectorAll(".pending-message:not(.failed)")) {
      if (!clientIds.has(el.dataset.clientId)) el.remove();
    }
  }

  clear() {
    this.element.replaceChildren();
  }
}
