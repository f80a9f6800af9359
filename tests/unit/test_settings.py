from __future__ import annotations

import pytest

from chat.settings import DEFAULT_DATABASE_URL, Settings, SettingsError


def test_defaults() -> None:
    settings = Settings.from_env({})
    assert settings.port == 8080
    assert settings.database_url == DEFAULT_DATABASE_URL
    assert settings.broadcast_url == "memory://"
    assert settings.max_message_chars == 2000
    assert settings.sqlite_synchronous == "FULL"


def test_environment_is_read() -> None:
    settings = Settings.from_env(
        {
            "CHAT_PORT": "9000",
            "CHAT_MAX_MESSAGE_CHARS": "500",
            "CHAT_ALLOWED_ORIGINS": "https://a.example, https://B.example/",
            "CHAT_SQLITE_SYNCHRONOUS": "normal",
        }
    )
    assert settings.port == 9000
    assert settings.max_message_chars == 500
    assert settings.allowed_origins == frozenset({"https://a.example", "https://b.example"})
    assert settings.sqlite_synchronous == "NORMAL"


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"CHAT_PORT": "http"}, "CHAT_PORT must be an integer, got 'http'"),
        ({"CHAT_PORT": "70000"}, "CHAT_PORT must be at most 65535"),
        ({"CHAT_MAX_MESSAGE_CHARS": "0"}, "CHAT_MAX_MESSAGE_CHARS must be at least 1"),
        ({"CHAT_SQLITE_SYNCHRONOUS": "fast"}, "CHAT_SQLITE_SYNCHRONOUS must be one of"),
        ({"CHAT_ALLOWED_ORIGINS": "example.com"}, "CHAT_ALLOWED_ORIGINS entries"),
        ({"CHAT_MAX_FRAME_BYTES": "100000"}, "must not exceed CHAT_MAX_PROTOCOL_FRAME_BYTES"),
        ({"CHAT_METRICS": "maybe"}, "CHAT_METRICS must be true or false, got 'maybe'"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], fragment: str) -> None:
    with pytest.raises(SettingsError, match=fragment.replace("(", r"\(")):
        Settings.from_env(env)


def test_metrics_are_off_and_tokenless_by_default() -> None:
    settings = Settings.from_env({})
    assert settings.metrics is False
    assert settings.metrics_token is None
    assert settings.prometheus_multiproc_dir is None


def test_metrics_settings_are_read() -> None:
    settings = Settings.from_env(
        {
            "CHAT_METRICS": "true",
            "CHAT_METRICS_TOKEN": " abc.DEF-123~_+/== ",
            "PROMETHEUS_MULTIPROC_DIR": "/run/chat-metrics",
        }
    )
    assert settings.metrics is True
    assert settings.metrics_token == "abc.DEF-123~_+/=="
    assert settings.prometheus_multiproc_dir == "/run/chat-metrics"


@pytest.mark.parametrize("token", ["has space", 'quote"', "ünïcode", "=leading"])
def test_a_bad_metrics_token_is_refused_without_being_repeated(token: str) -> None:
    with pytest.raises(SettingsError, match="CHAT_METRICS_TOKEN must be a bearer token") as error:
        Settings.from_env({"CHAT_METRICS_TOKEN": token})
    assert token not in str(error.value)


def test_the_metrics_token_stays_out_of_the_settings_repr() -> None:
    settings = Settings.from_env({"CHAT_METRICS_TOKEN": "very-secret"})
    assert "very-secret" not in repr(settings)
