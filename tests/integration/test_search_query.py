"""The query language under hypothesis: any input parses or is a 400 `invalid_query`, never
anything else; what reaches FTS5 or to_tsquery is quoted terms joined by our own operators only,
and each engine accepts it; through the API any query is results or a 400, never a 500."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from chat.errors import ClientError
from chat.search import postgres, sqlite_fts5
from chat.search.query import SearchQuery, parse_query
from chat.search.schema import TRIGRAM_TOKENIZER, WORD_TOKENIZER
from chat.search.snippet import snippet
from chat.settings import Settings
from tests.conftest import UNLIMITED_RATES
from tests.support.database import sqlite_url, upgrade
from tests.support.live import LiveServer
from tests.support.postgres import PostgresDatabase

_FTS_STRING = r'"(?:[^"]|"")*"'
_FTS_TERM = rf"{_FTS_STRING}\*?"
FTS5_SHAPE = re.compile(rf"\({_FTS_TERM}(?: AND {_FTS_TERM})*\)(?: NOT {_FTS_TERM})*", re.S)
_LEXEME = r"'(?:[^'\\]|''|\\\\)*'(?::\*)?"
TSQUERY_SHAPE = re.compile(rf"\({_LEXEME}(?: & {_LEXEME})*\)(?: & !{_LEXEME})*", re.S)

# Text with the language's own characters and the engines' syntax over-represented.
SYNTAX = st.sampled_from(
    ['"', "*", "-", "(", ")", ":", "^", "NEAR", "AND", "OR", "NOT", "body:", "'", "\\", "&", "|"]
)
WORDS = st.sampled_from(["from:ada", "in:general", "fox", "café", "北京", "🚀", "x" * 101])
QUERIES = st.lists(st.one_of(st.text(max_size=12), SYNTAX, WORDS), max_size=12).map(" ".join)
NASTY = [
    'NEAR("a" "b")',
    "a OR b",
    "body:secret",
    '"a" NOT',
    '-"',
    "^start",
    "'); DROP TABLE messages; --",
    "a\\' & !b",
    "from:ada from:bob",
    "\ud800",
    "*",
    "x" * 10_000,
]


def parsed(raw: str) -> SearchQuery | None:
    try:
        return parse_query(raw)
    except ClientError as error:
        assert (error.status, error.code) == (400, "invalid_query"), error
        assert error.detail
        return None


@pytest.fixture(scope="module")
def fts5() -> Iterator[sqlite3.Connection]:
    connection = sqlite3.connect(":memory:")
    connection.execute(f"CREATE VIRTUAL TABLE words USING fts5(body, tokenize='{WORD_TOKENIZER}')")
    connection.execute(
        f"CREATE VIRTUAL TABLE grams USING fts5(body, tokenize='{TRIGRAM_TOKENIZER}')"
    )
    connection.execute("INSERT INTO words (body) VALUES ('a quick café fox NEAR body')")
    connection.execute("INSERT INTO grams (body) VALUES ('a quick café fox NEAR body 北京大学')")
    yield connection
    connection.close()


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=QUERIES)
@example(raw="NEAR(a b)")
@example(raw='"quoted "" inside" -x')
def test_any_input_parses_or_is_a_400_and_renders_only_quoted_terms(
    raw: str, fts5: sqlite3.Connection
) -> None:
    query = parsed(raw)
    if query is None:
        return
    for trigram, table in ((False, "words"), (True, "grams")):
        expression = sqlite_fts5.render(query, trigram=trigram)
        if expression is None:
            continue
        assert FTS5_SHAPE.fullmatch(expression), expression
        # The engine takes it as a query (an injected operator would be a syntax error or
        # change the shape above).
        fts5.execute(f"SELECT rowid FROM {table} WHERE {table} MATCH ?", (expression,)).fetchall()
    tsquery = postgres.render(query)
    if tsquery is not None:
        assert TSQUERY_SHAPE.fullmatch(tsquery), tsquery


@pytest.mark.parametrize("raw", NASTY)
def test_known_injections_are_refused_or_quoted(raw: str, fts5: sqlite3.Connection) -> None:
    query = parsed(raw)
    if query is not None:
        expression = sqlite_fts5.render(query)
        assert expression is None or FTS5_SHAPE.fullmatch(expression)


def test_the_shapes_can_fail() -> None:
    assert not FTS5_SHAPE.fullmatch('("a") OR "b"')
    assert not FTS5_SHAPE.fullmatch('("a" NEAR("b"))')
    assert not TSQUERY_SHAPE.fullmatch("('a' | 'b')")
    assert not TSQUERY_SHAPE.fullmatch("('a'') & 'b')")


def to_tsquery(url: str, tsquery: str) -> None:
    async def run() -> None:
        connection = await asyncpg.connect(url)
        try:
            await connection.fetchval("SELECT to_tsquery('simple', $1)::text", tsquery)
        finally:
            await connection.close()

    asyncio.run(run())


@pytest.mark.postgres
@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(raw=QUERIES)
@example(raw="o'reilly back\\slash -'x' \"a b\" c*")
def test_postgres_accepts_every_rendering(raw: str, postgres_database: PostgresDatabase) -> None:
    query = parsed(raw)
    tsquery = postgres.render(query) if query is not None else None
    if tsquery is not None:
        to_tsquery(postgres_database.asyncpg_url, tsquery)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    url = sqlite_url(Path(tmp_path_factory.mktemp("search-fuzz")) / "chat.db")
    upgrade(url)
    with LiveServer(Settings(database_url=url, **UNLIMITED_RATES)) as server:
        httpx.post(f"{server.url}/api/messages", json={"body": "a quick café fox"}, timeout=30)
        yield server


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(raw=QUERIES)
def test_the_api_answers_any_query_with_results_or_a_400(raw: str, live: LiveServer) -> None:
    response = httpx.get(f"{live.url}/api/search", params={"q": raw}, timeout=30)
    assert response.status_code in (200, 400), (raw, response.status_code, response.text)
    if response.status_code == 400:
        assert response.json()["error"] == "invalid_query"


def test_snippets_escape_everything_but_marks_and_window_long_bodies() -> None:
    query = parse_query("deploy* fox")
    assert snippet("<i>Deploying</i> the fox & co", query) == (
        "&lt;i&gt;<mark>Deploying</mark>&lt;/i&gt; the <mark>fox</mark> &amp; co"
    )
    long_body = "word " * 100 + "the fox is here " + "tail " * 100
    excerpt = str(snippet(long_body, query))
    assert excerpt.startswith("…") and excerpt.endswith("…")
    assert "<mark>fox</mark>" in excerpt
    assert len(excerpt) < 260
    assert str(snippet("no match at all", query)) == "no match at all"
    # Trigram mode marks substrings; a body whose lower case changes length gets no marks.
    assert str(snippet("北京大学", parse_query("北京"), trigram=True)) == "<mark>北京</mark>大学"
    assert str(snippet("İstanbul <b>", parse_query("stan"), trigram=True)) == "İstanbul &lt;b&gt;"
