"""Parse rendered message HTML and report what markup it contains, for XSS assertions."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser


@dataclass
class Inspection:
    tags: list[tuple[str, dict[str, str | None]]] = field(default_factory=list)
    text: list[str] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)

    @property
    def visible_text(self) -> str:
        return "".join(self.text)


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.result = Inspection()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.result.tags.append((tag, dict(attrs)))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.result.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.result.text.append(data)

    def handle_comment(self, data: str) -> None:
        self.result.comments.append(data)


def inspect_html(html: str) -> Inspection:
    collector = _Collector()
    collector.feed(html)
    collector.close()
    return collector.result


def assert_only_safe_links(html: str, expected_text: str) -> None:
    """The fragment shows exactly `expected_text` and its only markup is http(s) links."""
    inspection = inspect_html(html)
    assert inspection.visible_text == expected_text
    assert not inspection.comments
    for tag, attrs in inspection.tags:
        assert tag == "a", f"unexpected <{tag}> in {html!r}"
        assert set(attrs) == {"href", "rel", "target"}, f"unexpected attributes {attrs!r}"
        href = attrs["href"] or ""
        assert href.startswith(("http://", "https://")), f"unsafe href {href!r}"
