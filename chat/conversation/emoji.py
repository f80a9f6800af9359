"""Which strings may be a reaction: one emoji (with its modifiers and joiners), nothing else."""

from __future__ import annotations

import unicodedata

from chat.errors import ClientError

MAX_EMOJI_CHARS = 16  # code points: a family or a flag with modifiers fits
MAX_EMOJI_PER_MESSAGE = 20

# Code points that build up an emoji without being one themselves.
_JOINERS = {"\u200d", "\ufe0f", "\ufe0e", "\u20e3"}


def parse_emoji(value: str) -> str:
    """The emoji, or ClientError `invalid_emoji`: a short run of pictographic characters,
    skin-tone modifiers, variation selectors, zero-width joiners or regional indicators."""
    emoji = unicodedata.normalize("NFC", value.strip())
    if not emoji or len(emoji) > MAX_EMOJI_CHARS or not all(_emoji_part(ch) for ch in emoji):
        raise ClientError("invalid_emoji", "a reaction is one emoji, such as 👍")
    if all(ch in _JOINERS for ch in emoji):
        raise ClientError("invalid_emoji", "a reaction is one emoji, such as 👍")
    return emoji


def _emoji_part(ch: str) -> bool:
    if ch in _JOINERS:
        return True
    code = ord(ch)
    if 0x1F3FB <= code <= 0x1F3FF or 0x1F1E6 <= code <= 0x1F1FF or 0xE0020 <= code <= 0xE007F:
        return True  # skin tones, regional indicators (flags), tag characters
    return unicodedata.category(ch) == "So"
