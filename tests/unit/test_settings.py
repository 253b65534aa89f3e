"""Settings: HTTPS only, the government host one setting away, clear errors per variable."""

from __future__ import annotations

from pathlib import Path

import pytest
from achieveit_sync.errors import ConfigurationError
from achieveit_sync.settings import (
    COMMERCIAL_BASE_URL,
    GOVERNMENT_BASE_URL,
    ClientSettings,
    RetrySettings,
)


def test_defaults_to_the_commercial_host() -> None:
    assert ClientSettings.from_env({}).base_url == COMMERCIAL_BASE_URL


def test_the_government_host_is_one_variable_away() -> None:
    settings = ClientSettings.from_env({"ACHIEVEIT_BASE_URL": GOVERNMENT_BASE_URL + "/"})

    assert settings.base_url == "https://gov-api.achieveit.com"


@pytest.mark.parametrize(
    "url",
    ["http://api.achieveit.com", "api.achieveit.com", "ftp://x", "https://", "HTTP://a.b"],
)
def test_a_non_https_base_url_is_refused_with_a_clear_error(url: str) -> None:
    with pytest.raises(ConfigurationError, match="ACHIEVEIT_BASE_URL"):
        ClientSettings(base_url=url)


def test_credentials_in_the_base_url_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="plain origin"):
        ClientSettings(base_url="https://user:secret@api.achieveit.com")


def test_timeouts_and_attempts_come_from_the_environment() -> None:
    settings = ClientSettings.from_env(
        {
            "ACHIEVEIT_CONNECT_TIMEOUT_SECONDS": "2.5",
            "ACHIEVEIT_READ_TIMEOUT_SECONDS": "30",
            "ACHIEVEIT_MAX_ATTEMPTS": "7",
        }
    )

    assert (settings.connect_timeout, settings.read_timeout) == (2.5, 30.0)
    assert settings.retry.max_attempts == 7


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("ACHIEVEIT_READ_TIMEOUT_SECONDS", "soon"),
        ("ACHIEVEIT_READ_TIMEOUT_SECONDS", "-1"),
        ("ACHIEVEIT_CONNECT_TIMEOUT_SECONDS", "nan"),
        ("ACHIEVEIT_MAX_ATTEMPTS", "0"),
        ("ACHIEVEIT_MAX_ATTEMPTS", "2.5"),
    ],
)
def test_a_bad_value_names_its_variable(variable: str, value: str) -> None:
    with pytest.raises(ConfigurationError, match=variable):
        ClientSettings.from_env({variable: value})


def test_a_missing_ca_bundle_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="ACHIEVEIT_CA_BUNDLE"):
        ClientSettings.from_env({"ACHIEVEIT_CA_BUNDLE": str(tmp_path / "missing.pem")})


def test_retry_settings_refuse_nonsense() -> None:
    with pytest.raises(ConfigurationError):
        RetrySettings(max_attempts=0)
    with pytest.raises(ConfigurationError):
        RetrySettings(backoff_base=-1)
