"""How the client turns server answers into messages and error types (no network)."""

from __future__ import annotations

import pytest
from achieveit_sync.api_key import ApiKey
from achieveit_sync.client import (
    _MESSAGE_PREVIEW,
    _is_retryable_status,
    _parse_export_body,
    _server_message,
)
from achieveit_sync.errors import PermanentApiError

from tests.conftest import RECOGNISABLE_KEY


def test_a_server_echoing_the_key_is_scrubbed() -> None:
    key = ApiKey(RECOGNISABLE_KEY)

    message = _server_message(f'{{"message": "key {RECOGNISABLE_KEY} is revoked"}}', key)

    assert message == "key ******** is revoked"


def test_long_server_messages_are_shortened() -> None:
    message = _server_message("x" * 10_000, ApiKey("k"))

    assert message == "x" * _MESSAGE_PREVIEW + "..."


@pytest.mark.parametrize(
    ("status", "retryable"),
    [
        (400, False),
        (401, False),
        (403, False),
        (404, False),
        (413, False),
        (408, True),
        (429, True),
        (500, True),
        (501, False),
        (502, True),
        (503, True),
        (505, False),
    ],
)
def test_which_statuses_are_retried(status: int, retryable: bool) -> None:
    assert _is_retryable_status(status) is retryable


def test_an_export_answer_may_be_a_bare_array() -> None:
    assert _parse_export_body('[{"id": "a"}]', "op") == ([{"id": "a"}], None)


@pytest.mark.parametrize(
    "body", ["<html>oops</html>", '{"items": "nope"}', '{"items": [1, 2]}', '"text"']
)
def test_an_export_answer_of_the_wrong_shape_is_a_permanent_error(body: str) -> None:
    with pytest.raises(PermanentApiError, match="export of plan 'P'"):
        _parse_export_body(body, "export of plan 'P'")


def test_a_negative_or_boolean_total_count_is_ignored() -> None:
    assert _parse_export_body('{"items": [], "totalCount": -1}', "op")[1] is None
    assert _parse_export_body('{"items": [], "totalCount": true}', "op")[1] is None


def test_a_success_body_echoing_the_key_is_scrubbed_before_any_report() -> None:
    from datetime import date

    import responses
    from achieveit_sync.api_key import StaticApiKey
    from achieveit_sync.client import AchieveItClient
    from achieveit_sync.settings import ClientSettings
    from achieveit_sync.updates import ProgressUpdate, Status

    with responses.RequestsMock() as mocked:
        mocked.post(
            "https://api.achieveit.com/api/progressupdates/a.json",
            status=200,
            body=f"accepted for key {RECOGNISABLE_KEY}",
        )
        client = AchieveItClient(ClientSettings(), StaticApiKey(RECOGNISABLE_KEY))
        result = client.submit_progress_updates(
            "a.json", [ProgressUpdate("A", Status.ON_TRACK, date(2026, 11, 1))]
        )
        sent = mocked.calls[0].request.headers["Authorization"]

    assert result.body == "accepted for key ********"
    assert sent == f"API-KEY {RECOGNISABLE_KEY}"
