"""The API key never shows itself: not in str, repr, f-strings, logs, pickles or errors."""

from __future__ import annotations

import logging
import pickle

import boto3
import pytest
from achieveit_sync.api_key import ApiKey, SecretsManagerApiKey, StaticApiKey
from achieveit_sync.errors import ConfigurationError, SecretUnavailableError
from botocore.stub import Stubber

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


def _secret_holding(
    text: str | None, *, error: str = "", status: int = 400
) -> SecretsManagerApiKey:
    """The key provider over a Secrets Manager client whose answer is stubbed (no network)."""
    client = boto3.client(
        "secretsmanager",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    stubber = Stubber(client)
    if error:
        stubber.add_client_error("get_secret_value", error, http_status_code=status)
    else:
        stubber.add_response(
            "get_secret_value",
            {"Name": "prod/achieveit", "SecretString": text, "VersionId": "v" * 32},
        )
    stubber.activate()
    return SecretsManagerApiKey("prod/achieveit", secrets_client=client)


def test_a_secret_holds_the_key_as_plain_text_or_as_json() -> None:
    assert _secret_holding("plain-key\n").current().reveal() == "plain-key"
    holding_json = _secret_holding('{"apiKey": "json-key", "note": "x"}')
    assert holding_json.current().reveal() == "json-key"


@pytest.mark.parametrize(
    "text",
    ['{"apiKey": ""}', '{"key": "SECRETVALUE"}', '{"apiKey": 5}', '{"apiKey": "SECRETVALUE'],
)
def test_a_malformed_json_secret_is_explained_without_its_content(text: str) -> None:
    with pytest.raises(ConfigurationError) as error:
        _secret_holding(text).current()

    assert "prod/achieveit" in str(error.value)
    assert "SECRETVALUE" not in str(error.value)


@pytest.mark.parametrize(
    ("error", "status"),
    [("ThrottlingException", 400), ("InternalServiceError", 500), ("SomethingNew", 503)],
)
def test_a_failing_secrets_manager_is_for_a_later_run(error: str, status: int) -> None:
    with pytest.raises(SecretUnavailableError, match="run again later"):
        _secret_holding(None, error=error, status=status).current()


@pytest.mark.parametrize("error", ["ResourceNotFoundException", "AccessDeniedException"])
def test_a_missing_or_forbidden_secret_is_for_the_user_to_fix(error: str) -> None:
    with pytest.raises(ConfigurationError, match=f"cannot read the API key secret.*{error}"):
        _secret_holding(None, error=error).current()


def test_a_cut_echo_of_the_key_is_blanked_too() -> None:
    key = ApiKey(RECOGNISABLE_KEY)
    cut = RECOGNISABLE_KEY[:20]

    scrubbed = key.scrub(f"header was 'API-KEY {cut}' [truncated]; see the docs")

    assert cut not in scrubbed
    assert scrubbed == "header was 'API-KEY ********' [truncated]; see the docs"


def test_a_key_far_longer_than_a_key_is_refused_without_echoing_it() -> None:
    with pytest.raises(ConfigurationError, match="2,000 characters long") as refused:
        ApiKey("K" * 2000)

    assert "KKKK" not in str(refused.value)
