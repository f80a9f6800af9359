// Sending what the outbox holds: one message in flight at a time, a dead socket noticed when
// the server does not answer, refusals shown on the pending message or given back to the
// composer. The queue itself (storage, order, retry arithmetic) is outbox.js.

import { frameFor, newClientId } from "./outbox.js";

const ANSWER_TIMEOUT_MS = 10000;
export const SIGN_IN = { href: "/login?next=/", label: "Sign in" };

export class Sender {
  /**
   * @param {object} page  outbox, ownClientIds, pendingView, composer, notify, me,
   *   currentRoom(), send(frame) -> bool, abandon()
   */
  constructor(page) {
    this.page = page;
    this.ready = false; // the socket is open and caught up: frames may be sent
    this.answerTimer = null;
    this.holdTimer = null;
  }

  /** Typed here: into the outbox, shown as pending, sent when it may be. */
  queue(body, replyTo = null) {
    const { me, composer, outbox, ownClientIds, pendingView } = this.page;
    const item = {
      client_id: newClientId(),
      body,
      author: composer.authorName(),
      user_id: me === null ? null : me.id,
      room: this.page.currentRoom(),
      queued_at: Date.now(),
    };
    if (replyTo !== null) item.reply_to = replyTo;
    ownClientIds.add(item.client_id);
    outbox.add(item);
    pendingView.show(item);
    this.pump();
  }

  /** The server has the message with this client_id: it leaves the outbox. */
  settle(clientId) {
    this.page.pendingView.settle(clientId);
    if (this.page.outbox.settle(clientId)) {
      clearTimeout(this.answerTimer);
      this.pump();
    }
  }

  setReady(ready) {
    this.ready = ready;
    if (ready) {
      this.pump();
      return;
    }
    this.page.outbox.clearInFlight();
    clearTimeout(this.answerTimer);
  }

  /** Sends the oldest queued message when the socket is ready and nothing is in flight. */
  pump() {
    const { composer, outbox, pendingView } = this.page;
    if (!composer.enabled || !this.ready) return; // a guest who may only read: it waits
    const next = outbox.next(Date.now());
    if (next === null) return;
    if (next.waitMs !== undefined) {
      this.holdFor(next.waitMs);
      return;
    }
    const item = next.send;
    if ((item.room || "general") === this.page.currentRoom()) pendingView.show(item);
    pendingView.setState(item.client_id, "sending…");
    if (!this.page.send(frameFor(item))) return;
    outbox.sent(item.client_id);
    // The server answers every frame (the message or an error). No answer means the socket is
    // dead without knowing it (a laptop lid, a changed network): start over on a new one,
    // where sending again is safe because the server de-duplicates by client_id.
    this.answerTimer = setTimeout(() => {
      console.warn("chat: no answer from the server, reconnecting");
      this.page.abandon();
    }, ANSWER_TIMEOUT_MS);
  }

  holdFor(ms) {
    if (this.holdTimer !== null) return;
    this.holdTimer = setTimeout(() => {
      this.holdTimer = null;
      this.pump();
    }, ms);
  }

  onError(frame) {
    const { notify, outbox, pendingView, composer } = this.page;
    const detail = String(frame.detail || frame.error || "error");
    const wasInFlight = outbox.inFlight;
    const { action, clientId, item } = outbox.refusal(frame, Date.now());
    if (clientId !== null && clientId === wasInFlight) clearTimeout(this.answerTimer);
    if (action === "notice") {
      notify(detail, { link: frame.error === "sign_in_required" ? SIGN_IN : null });
      return;
    }
    if (action === "retry") pendingView.setState(clientId, `${detail}; retrying…`);
    else if (action === "give_back") this.giveBack(item, detail, frame.error);
    else pendingView.fail(clientId, detail, composer);
    this.pump();
  }

  // name_taken, sign_in_required: the text returns to the composer, to send again under
  // another name or once signed in. Something new already typed there is not overwritten: the
  // refused message then stays, marked failed, with its Edit button.
  giveBack(item, detail, code) {
    const { notify, pendingView, composer } = this.page;
    const signIn = code === "sign_in_required";
    notify(detail, { link: signIn ? SIGN_IN : null, persist: signIn });
    if (composer.busy) {
      pendingView.fail(item.client_id, detail, composer);
      return;
    }
    pendingView.remove(item.client_id);
    composer.giveBack(item.body, { focusName: code === "name_taken" });
  }
}
