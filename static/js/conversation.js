// Acting on messages from their toolbar: reply (the composer says to what), react (toggled by
// this viewer's user id), edit in place (and Up arrow for one's last message), delete (own, or
// any as a room's owner or moderator) after a confirmation. Results arrive as message_updated
// frames like everyone else's; failures become notices.

import { MessageActions, messageIdOf, reactionTurnsOn, startInlineEdit } from "./actions.js";
import { deleteJson, patchJson, putJson, roomPath } from "./api.js";
import { numericId } from "./timeline.js";

const EXCERPT_CHARS = 80;
const MODERATORS = new Set(["owner", "moderator"]);

function messageUrl(room, id) {
  return `${roomPath(room)}/messages/${id}`;
}

function bodyText(el) {
  return el.querySelector(":scope > .body")?.textContent ?? "";
}

export class Conversation {
  /**
   * @param {object} page  me, inbox, composer, timelines, roomInfo, maxChars, notify,
   *   currentRoom()
   */
  constructor(page) {
    this.page = page;
    this.actions = new MessageActions({
      container: page.inbox,
      allowed: (el) => this.allowed(el),
      act: (action, el, detail) => this.act(action, el, detail),
    });
  }

  hide() {
    this.actions.hide();
  }

  allowed(el) {
    const { me, composer, roomInfo } = this.page;
    const signedIn = me !== null;
    const own = signedIn && numericId(el.dataset.userId) === me.id;
    const role = roomInfo.get(this.page.currentRoom())?.role;
    return {
      reply: composer.enabled,
      react: signedIn,
      edit: own,
      delete: own || (signedIn && (me.isAdmin || MODERATORS.has(role))),
    };
  }

  act(action, el, detail) {
    const room = this.page.currentRoom();
    const id = messageIdOf(el);
    if (id === null) return;
    const message = this.page.timelines.get(room).get(id) ?? null;
    if (action === "reply") this.reply(el, id);
    else if (action === "react") this.react(room, id, message, detail);
    else if (action === "edit") this.edit(el, room, id, message);
    else if (action === "delete") this.remove(room, id);
  }

  refused(what, error) {
    this.page.notify(error.detail || `Could not ${what} that message. Try again in a moment.`);
    console.warn(`chat: ${what} failed`, error);
  }

  reply(el, id) {
    const author = el.querySelector(".meta .author")?.textContent.trim() || "anonymous";
    const excerpt = bodyText(el).trim().slice(0, EXCERPT_CHARS);
    this.page.composer.setReply({ id, author, excerpt });
  }

  async react(room, id, message, emoji) {
    const on = reactionTurnsOn(message?.reactions, emoji, this.page.me.id);
    const url = `${messageUrl(room, id)}/reactions/${encodeURIComponent(emoji)}`;
    try {
      await (on ? putJson(url) : deleteJson(url));
    } catch (error) {
      this.refused("react to", error);
    }
  }

  edit(el, room, id, message) {
    const text = message && !message.stub ? String(message.body ?? "") : bodyText(el);
    startInlineEdit(el, text, {
      maxChars: this.page.maxChars,
      onSave: async (body) => {
        try {
          await patchJson(messageUrl(room, id), { body });
        } catch (error) {
          this.refused("edit", error);
          throw error;
        }
      },
    });
  }

  async remove(room, id) {
    if (!window.confirm("Delete this message? Everyone will see that it was deleted.")) return;
    try {
      await deleteJson(messageUrl(room, id));
    } catch (error) {
      this.refused("delete", error);
    }
  }

  /** Up arrow in the empty composer: edit one's last message in the room shown. */
  editLast() {
    const { me, timelines, inbox } = this.page;
    if (me === null) return false;
    const room = this.page.currentRoom();
    const mine = (m) => !m.deleted && numericId(m.user?.id) === me.id;
    const last = timelines.get(room).lastWhere(mine);
    const id = last === null ? null : numericId(last.id);
    const el = id === null ? null : inbox.querySelector(`:scope > #m${id}`);
    if (el === null) return false;
    el.scrollIntoView({ block: "nearest" });
    this.edit(el, room, id, last);
    return true;
  }
}
