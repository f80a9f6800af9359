"""Settings for single sign-on and trusted-proxy sign-in: refused when they cannot work."""

from __future__ import annotations

import pytest

from chat.settings import Settings, SettingsError

OIDC = {
    "CHAT_OIDC_ISSUER": "https://id.example",
    "CHAT_OIDC_CLIENT_ID": "chat",
    "CHAT_OIDC_CLIENT_SECRET": "s3cret",
}


def test_single_sign_on_is_off_by_default() -> None:
    settings = Settings.from_env({})
    assert not settings.oidc_enabled
    assert settings.proxy_user_header is None and settings.trusted_proxies == ()


def test_the_three_oidc_settings_turn_it_on_and_the_secret_stays_out_of_repr() -> None:
    settings = Settings.from_env(OIDC)
    assert settings.oidc_enabled
    assert (settings.oidc_issuer, settings.oidc_client_id) == ("https://id.example", "chat")
    assert "s3cret" not in repr(settings)


@pytest.mark.parametrize("missing", sorted(OIDC))
def test_a_partial_oidc_configuration_is_refused(missing: str) -> None:
    partial = {name: value for name, value in OIDC.items() if name != missing}
    with pytest.raises(SettingsError, match="needs all of CHAT_OIDC_ISSUER"):
        Settings.from_env(partial)


@pytest.mark.parametrize("issuer", ["id.example", "ftp://id.example", "https://" + "x" * 250])
def test_an_issuer_that_is_not_an_http_url_is_refused(issuer: str) -> None:
    with pytest.raises(SettingsError, match="CHAT_OIDC_ISSUER"):
        Settings.from_env({**OIDC, "CHAT_OIDC_ISSUER": issuer})


def test_a_proxy_user_header_without_trusted_proxies_is_refused() -> None:
    with pytest.raises(SettingsError, match="needs CHAT_TRUSTED_PROXIES"):
        Settings.from_env({"CHAT_PROXY_USER_HEADER": "X-Forwarded-User"})


def test_trusted_proxies_are_addresses_or_networks() -> None:
    settings = Settings.from_env(
        {
            "CHAT_PROXY_USER_HEADER": "X-Forwarded-User",
            "CHAT_TRUSTED_PROXIES": "127.0.0.1, 10.0.0.0/8, ::1",
        }
    )
    assert settings.trusted_proxies == ("127.0.0.1", "10.0.0.0/8", "::1")
    with pytest.raises(SettingsError, match=r"'proxy\.example'"):
        Settings.from_env({"CHAT_TRUSTED_PROXIES": "10.0.0.1, proxy.example"})


def test_overrides_are_validated_too() -> None:
    with pytest.raises(SettingsError, match="CHAT_TRUSTED_PROXIES"):
        Settings().with_overrides(proxy_user_header="X-Forwarded-User")
