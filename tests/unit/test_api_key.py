"""The API key never shows itself: not in str, repr, f-strings, logs, pickles or errors."""

from __future__ import annotations

import logging
import pickle

import pytest
from achieveit_sync.api_key import ApiKey, StaticApiKey, _key_from_secret_text
from achieveit_sync.errors import ConfigurationError

from tests.conftest import RECOGNISABLE_KEY


def test_every_text_form_of_the_key_is_redacted() -> None:
    key = ApiKey(RECOGNISABLE_KEY)

    shown = [
        str(key),
        repr(key),
        f"{key}",
        f"{key!r}",
        "%s" % key,  # noqa: UP031 - %-formatting is a path too
        repr([key]),
        repr(StaticApiKey(key)),
        repr({"key": key}),
    ]

    assert all(RECOGNISABLE_KEY not in text for text in shown)
    assert key.reveal() == RECOGNISABLE_KEY


def test_logging_the_key_logs_the_redaction(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)

    logging.getLogger("test").info("using %s", ApiKey(RECOGNISABLE_KEY), extra={"k": ApiKey("x1")})

    assert RECOGNISABLE_KEY not in caplog.text
    assert "********" in caplog.text


def test_the_key_cannot_be_pickled_into_a_cache_or_queue() -> None:
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(ApiKey(RECOGNISABLE_KEY))


@pytest.mark.parametrize("value", ["", "   ", "API-KEY abc", "abc def"])
def test_empty_or_spaced_keys_are_refused_without_echoing_them(value: str) -> None:
    with pytest.raises(ConfigurationError) as error:
        ApiKey(value)

    assert value.strip() == "" or value not in str(error.value)


def test_surrounding_white_space_from_a_pasted_key_is_dropped() -> None:
    assert ApiKey(f"  {RECOGNISABLE_KEY}\n").reveal() == RECOGNISABLE_KEY


def test_a_secret_holds_the_key_as_plain_text_or_as_json() -> None:
    assert _key_from_secret_text("plain-key\n", "s") == "plain-key"
    assert _key_from_secret_text('{"apiKey": "json-key", "note": "x"}', "s") == "json-key"


@pytest.mark.parametrize(
    "text",
    ['{"apiKey": ""}', '{"key": "SECRETVALUE"}', '{"apiKey": 5}', '{"apiKey": "SECRETVALUE'],
)
def test_a_malformed_json_secret_is_explained_without_its_content(text: str) -> None:
    with pytest.raises(ConfigurationError) as error:
        _key_from_secret_text(text, "prod/achieveit")

    assert "prod/achieveit" in str(error.value)
    assert "SECRETVALUE" not in str(error.value)
