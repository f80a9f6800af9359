"""HTML rendering: one autoescaping Jinja2 environment, the message fragment, and linkify."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import jinja2
from markupsafe import Markup, escape

# One pass, no nested quantifiers: the engine never backtracks more than the match it is
# building, so rendering stays linear in the length of the body whatever it contains.
_LINK_START = re.compile(r"(?i)\b(?:https?://|www\.)[^\s<>\"'`]+")
_TRAILING_PUNCTUATION = ".,;:!?*"
_CLOSERS = {")": "(", "]": "[", "}": "{"}


# @username (the account name syntax) or @room, not inside a word or an e-mail address.
_MENTION = re.compile(r"(?<![\w@.])@([a-z0-9_][a-z0-9_.-]{0,31})(?![\w-])")


def render_body(text: str) -> Markup:
    """A message body as HTML: escaped, http(s)/www links, @mentions marked up.

    Mentions are marked where the text has the syntax of one; whether the name is an account
    (and a member) decides the mention counts, not this markup."""
    return highlight_mentions(linkify(text))


def highlight_mentions(html: Markup) -> Markup:
    """Wrap @names in the text of already escaped HTML (never inside a tag: `<a>` attributes
    hold no bare `@name` because the link's text is outside them, and escaping turned every
    `<` of the body into `&lt;`)."""
    if "@" not in html:
        return html
    parts = re.split(r"(<[^>]*>)", str(html))
    for index in range(0, len(parts), 2):  # even indexes are text between tags
        parts[index] = _MENTION.sub(_mention_span, parts[index])
    return Markup("".join(parts))


def _mention_span(match: re.Match[str]) -> str:
    name = match.group(1).rstrip(".")
    trailing = match.group(1)[len(name) :]
    return f'<span class="mention" data-mention="{name}">@{name}</span>{trailing}'


def linkify(text: str) -> Markup:
    """Escape `text` and turn http(s) URLs and bare www. hosts into links.

    Only the schemes http and https are ever linked; everything else stays text.
    """
    first = _LINK_START.search(text)
    if first is None:  # most messages: nothing to link
        return escape(text)
    parts: list[str] = []
    position = 0
    for match in _LINK_START.finditer(text, first.start()):
        url = _trim_url(match.group(0))
        if not _has_host(url):
            continue
        start = match.start()
        parts.append(str(escape(text[position:start])))
        # Decide by how the match starts: "www.http://x" is a www. host, not an http URL.
        href = f"http://{url}" if url[:4].lower() == "www." else url
        parts.append(
            f'<a href="{escape(href)}" rel="nofollow noopener noreferrer" '
            f'target="_blank">{escape(url)}</a>'
        )
        position = start + len(url)
    parts.append(str(escape(text[position:])))
    return Markup("".join(parts))


def _trim_url(url: str) -> str:
    """Drop trailing punctuation and closing brackets that belong to the sentence, not the URL.

    Bracket counts are taken once and updated as characters are dropped, so this stays linear.
    """
    balance = {closer: url.count(closer) - url.count(opener) for closer, opener in _CLOSERS.items()}
    end = len(url)
    while end > 0:
        last = url[end - 1]
        if last in _TRAILING_PUNCTUATION:
            end -= 1
        elif last in balance and balance[last] > 0:
            balance[last] -= 1
            end -= 1
        else:
            break
    return url[:end]


def _has_host(url: str) -> bool:
    """Whether what is left after trimming still starts a link and names something after it."""
    for prefix in ("www.", "https://", "http://"):
        if url[: len(prefix)].lower() == prefix:
            rest = url[len(prefix) :]
            return bool(rest) and rest[0] not in "/?#.:"
    return False


def create_environment(templates_dir: Path) -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["linkify"] = linkify
    environment.filters["render_body"] = render_body
    return environment


class HasPublicName(Protocol):
    """A signed-in author as the fragment shows it (chat.auth.principal.Account)."""

    @property
    def id(self) -> int: ...

    @property
    def username(self) -> str: ...

    @property
    def display_name(self) -> str: ...


@dataclass(frozen=True, slots=True)
class MessageState:
    """What happened to a message since it was written, as the fragment shows it."""

    edited_at: str | None = None  # wire format
    deleted: bool = False
    deleted_by: str | None = None  # a display name, when someone else deleted it
    reply_to: int | None = None
    reply_author: str | None = None
    reply_excerpt: str = ""
    reply_deleted: bool = False


UNCHANGED = MessageState()


class MessageRenderer:
    """Renders the `message` macro of `templates/message.html`: the fragment that every client
    may insert as HTML."""

    def __init__(self, environment: jinja2.Environment) -> None:
        self._message = environment.get_template("message.html").module.message  # type: ignore[attr-defined]

    def render(
        self,
        *,
        message_id: int,
        body: str,
        author: str | None,
        created_at: str,
        client_id: str | None = None,
        user: HasPublicName | None = None,
        state: MessageState | None = None,
    ) -> Markup:
        html: Markup = self._message(
            message_id, body, author, created_at, client_id, user, state or UNCHANGED
        )
        return html
