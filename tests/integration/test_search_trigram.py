"""Search in trigram mode (CHAT_SEARCH_TRIGRAM=true when the migration ran), for languages that
do not put spaces between words, through the API of a real server on both engines."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from chat.settings import Settings
from tests.conftest import UNLIMITED_RATES
from tests.integration.test_search import Chat
from tests.support.database import sqlite_url, upgrade
from tests.support.live import LiveServer
from tests.support.postgres import PostgresDatabase


@pytest.fixture
def trigram_chat(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Chat]:
    monkeypatch.setenv("CHAT_SEARCH_TRIGRAM", "true")
    if getattr(request, "param", "sqlite") == "postgres":
        postgres: PostgresDatabase = request.getfixturevalue("postgres_database")
        url = postgres.extra()
    else:
        url = sqlite_url(tmp_path / "trigram.db")
    upgrade(url)
    monkeypatch.delenv("CHAT_SEARCH_TRIGRAM")  # the server finds the mode in the schema
    with (
        LiveServer(Settings(database_url=url, **UNLIMITED_RATES)) as server,
        httpx.Client(base_url=server.url, timeout=30) as client,
    ):
        yield Chat(client)


@pytest.mark.parametrize(
    "trigram_chat",
    ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
    indirect=True,
)
def test_trigram_mode_finds_chinese_and_japanese(trigram_chat: Chat) -> None:
    chat = trigram_chat
    ada = chat.person("ada")
    beijing = chat.post(ada, "general", "我们明天在北京大学见面")
    tokyo = chat.post(ada, "general", "東京タワーで会いましょう")
    other = chat.post(ada, "general", "restart the server")
    assert chat.ids(ada, "北京大学") == [beijing]
    assert chat.ids(ada, "北京") == [beijing]  # two characters: matched without the index
    assert chat.ids(ada, "タワー") == [tokyo]
    assert chat.ids(ada, "art") == [other]  # every term is a substring in this mode
    assert chat.ids(ada, "北京 -大学") == []
    (hit,) = chat.search(ada, "北京大学")["results"]
    assert hit["snippet"] == "我们明天在<mark>北京大学</mark>见面"
    chat.call("DELETE", f"/api/rooms/general/messages/{beijing}", ada)
    assert chat.ids(ada, "北京大学") == []
