"""Submitting updates: both kinds, both body formats, any 2xx accepted, errors explained."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from achieveit_sandbox import SandboxServer
from achieveit_sync.client import AchieveItClient
from achieveit_sync.errors import BadRequestError, PermanentApiError
from achieveit_sync.updates import BodyFormat, MetricUpdate, ProgressUpdate, Status

from tests.conftest import plan_items

PROGRESS = [
    ProgressUpdate("PX-1.1", Status.OFF_TRACK, date(2026, 11, 1), Decimal("41.5"), "ED busy"),
    ProgressUpdate("PX-1.3", Status.ACHIEVED, date(2026, 11, 2), comment="Clinic open, at last"),
]


@pytest.mark.parametrize("body_format", [BodyFormat.JSON, BodyFormat.CSV])
def test_progress_updates_are_stored_exactly_as_sent(
    sandbox: SandboxServer, client: AchieveItClient, body_format: BodyFormat
) -> None:
    result = client.submit_updates(f"kpis-2026-11.{body_format}", PROGRESS, body_format=body_format)

    assert 200 <= result.status_code < 300
    assert result.rows == 2
    stored = sandbox.stored_updates()
    assert [
        (u.kind, u.external_id, u.status, u.metric_value, u.as_of_date, u.comment) for u in stored
    ] == [
        ("progress", "PX-1.1", "Off Track", 41.5, date(2026, 11, 1), "ED busy"),
        ("progress", "PX-1.3", "Achieved", None, date(2026, 11, 2), "Clinic open, at last"),
    ]
    assert sandbox.recorded_requests()[0].path == f"/api/progressupdates/kpis-2026-11.{body_format}"


@pytest.mark.parametrize("body_format", [BodyFormat.JSON, BodyFormat.CSV])
def test_metric_updates_go_to_the_metric_endpoint(
    sandbox: SandboxServer, client: AchieveItClient, body_format: BodyFormat
) -> None:
    client.submit_updates(
        "metrics",
        [MetricUpdate("PX-3.2", Decimal(3), date(2026, 10, 31))],
        body_format=body_format,
    )

    [stored] = sandbox.stored_updates()
    assert (stored.kind, stored.external_id, stored.metric_value) == ("metric", "PX-3.2", 3.0)
    assert sandbox.recorded_requests()[0].path == "/api/metricupdates/metrics"


def test_the_export_shows_what_was_submitted(
    sandbox: SandboxServer, client: AchieveItClient
) -> None:
    client.submit_updates("one.json", PROGRESS[:1])

    item = next(i for i in plan_items(client, "PX-2027") if i["externalId"] == "PX-1.1")
    assert (item["statusName"], item["currentValue"], item["updates"]) == ("Off Track", 41.5, 1)


@pytest.mark.parametrize(("body_mode", "expected_body"), [("empty", ""), ("text", "Import queued")])
def test_any_2xx_is_success_whatever_its_body(
    sandbox: SandboxServer, client: AchieveItClient, body_mode: str, expected_body: str
) -> None:
    sandbox.set_behaviour(submit_status=200, submit_body=body_mode)

    result = client.submit_updates("quiet.json", PROGRESS)

    assert (result.status_code, result.body) == (200, expected_body)


def test_the_receipt_body_is_kept_for_the_report(client: AchieveItClient) -> None:
    result = client.submit_updates("receipt.json", PROGRESS)

    assert result.status_code == 202
    assert '"rowsReceived": 2' in result.body


def test_a_refused_batch_carries_the_servers_reason(
    sandbox: SandboxServer, client: AchieveItClient
) -> None:
    bad = [*PROGRESS, ProgressUpdate("NOPE-404", Status.ON_TRACK, date(2026, 11, 1))]

    with pytest.raises(BadRequestError) as error:
        client.submit_updates("with-bad-row.json", bad)

    assert error.value.status == 400
    assert "Row 3: unknown external ID 'NOPE-404'" in error.value.server_message
    assert "with-bad-row.json" in str(error.value)
    assert sandbox.stored_updates() == []  # all or nothing


def test_a_request_over_the_servers_limit_is_a_permanent_413(
    sandbox: SandboxServer, client: AchieveItClient
) -> None:
    sandbox.set_behaviour(max_rows_per_request=1)

    with pytest.raises(PermanentApiError) as error:
        client.submit_updates("too-big.json", PROGRESS)

    assert error.value.status == 413


def test_names_with_spaces_and_slashes_are_encoded_into_one_path_segment(
    sandbox: SandboxServer, client: AchieveItClient
) -> None:
    client.submit_updates("Q4 kpis/part 1.json", PROGRESS[:1])

    assert sandbox.stored_updates()[0].request_name == "Q4 kpis/part 1.json"


def test_an_empty_submission_is_refused_before_sending(
    sandbox: SandboxServer, client: AchieveItClient
) -> None:
    with pytest.raises(ValueError, match="at least one"):
        client.submit_updates("empty.json", [])

    assert sandbox.recorded_requests() == []
