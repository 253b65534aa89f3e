"""How the client turns server answers into messages and error types, through its public
calls over a mocked transport (``responses``: no network)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest
import responses
from achieveit_sync.api_key import StaticApiKey
from achieveit_sync.client import AchieveItClient
from achieveit_sync.errors import BadRequestError, PermanentApiError, RetryableApiError
from achieveit_sync.settings import ClientSettings, RetrySettings
from achieveit_sync.updates import ProgressUpdate, Status

from tests.conftest import RECOGNISABLE_KEY

API = "https://api.achieveit.com"
ONE_UPDATE = [ProgressUpdate("A", Status.ON_TRACK, date(2026, 11, 1))]
MESSAGE_PREVIEW = 500
"""How much of a server's message the client keeps in an error."""


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def client() -> AchieveItClient:
    return AchieveItClient(
        ClientSettings(retry=RetrySettings(max_attempts=2)),
        StaticApiKey(RECOGNISABLE_KEY),
        sleep=lambda _seconds: None,
    )


def test_a_server_echoing_the_key_is_scrubbed(
    mocked: responses.RequestsMock, client: AchieveItClient
) -> None:
    mocked.post(
        f"{API}/api/progressupdates/a.json",
        status=400,
        json={"message": f"key {RECOGNISABLE_KEY} is revoked"},
    )

    with pytest.raises(BadRequestError) as refused:
        client.submit_updates("a.json", ONE_UPDATE)

    assert refused.value.server_message == "key ******** is revoked"
    assert RECOGNISABLE_KEY not in str(refused.value)


def test_long_server_messages_are_shortened(
    mocked: responses.RequestsMock, client: AchieveItClient
) -> None:
    mocked.post(f"{API}/api/progressupdates/a.json", status=400, body="x" * 10_000)

    with pytest.raises(BadRequestError) as refused:
        client.submit_updates("a.json", ONE_UPDATE)

    assert refused.value.server_message == "x" * MESSAGE_PREVIEW + "..."


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
def test_which_statuses_are_retried(
    mocked: responses.RequestsMock, client: AchieveItClient, status: int, retryable: bool
) -> None:
    mocked.get(f"{API}/exports/plans/P", status=status, body="no")

    expected = RetryableApiError if retryable else PermanentApiError
    with pytest.raises(expected):
        client.export_page("P")

    assert len(mocked.calls) == (2 if retryable else 1)


def test_an_export_answer_may_be_a_bare_array(
    mocked: responses.RequestsMock, client: AchieveItClient
) -> None:
    mocked.get(f"{API}/exports/plans/P", body='[{"id": "a"}]')

    page = client.export_page("P")

    assert (page.items, page.total_count) == ([{"id": "a"}], None)


@pytest.mark.parametrize(
    "body", ["<html>oops</html>", '{"items": "nope"}', '{"items": [1, 2]}', '"text"']
)
def test_an_export_answer_of_the_wrong_shape_is_a_permanent_error(
    mocked: responses.RequestsMock, client: AchieveItClient, body: str
) -> None:
    mocked.get(f"{API}/exports/plans/P", body=body)

    with pytest.raises(PermanentApiError, match="export of plan 'P'"):
        client.export_page("P")


@pytest.mark.parametrize("total", ["-1", "true"])
def test_a_negative_or_boolean_total_count_is_ignored(
    mocked: responses.RequestsMock, client: AchieveItClient, total: str
) -> None:
    mocked.get(f"{API}/exports/plans/P", body=f'{{"items": [], "totalCount": {total}}}')

    assert client.export_page("P").total_count is None


def test_a_success_body_echoing_the_key_is_scrubbed_before_any_report(
    mocked: responses.RequestsMock, client: AchieveItClient
) -> None:
    mocked.post(
        f"{API}/api/progressupdates/a.json", status=200, body=f"accepted for key {RECOGNISABLE_KEY}"
    )

    result = client.submit_updates("a.json", ONE_UPDATE)

    assert result.body == "accepted for key ********"
    assert mocked.calls[0].request.headers["Authorization"] == f"API-KEY {RECOGNISABLE_KEY}"
