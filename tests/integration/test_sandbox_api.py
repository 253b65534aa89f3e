"""The sandbox over HTTP, as any client would see it: the documented rules and its own
documented choices where AchieveIt's behaviour is unknown."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from achieveit_sandbox import SandboxServer

from tests.integration.conftest import SandboxFactory, plan_organisation


def call(
    sandbox: SandboxServer, method: str, path: str, *, key: str | None = None, **kwargs: Any
) -> requests.Response:
    headers = {"Authorization": f"API-KEY {key or sandbox.api_key}", **kwargs.pop("headers", {})}
    return requests.request(
        method,
        f"{sandbox.base_url}{path}",
        headers=headers,
        verify=str(sandbox.ca_file),
        timeout=10,
        **kwargs,
    )


@pytest.fixture
def plan_sandbox(start_sandbox: SandboxFactory) -> SandboxServer:
    return start_sandbox(plan_organisation(("P", 1600)))


def test_export_pages_default_to_100_items(plan_sandbox: SandboxServer) -> None:
    body = call(plan_sandbox, "GET", "/exports/plans/P").json()

    assert len(body["items"]) == 100
    assert body["totalCount"] == 1600


def test_take_above_1500_is_clamped_as_documented(plan_sandbox: SandboxServer) -> None:
    body = call(plan_sandbox, "GET", "/exports/plans/P", params={"take": "5000"}).json()

    assert len(body["items"]) == 1500


@pytest.mark.parametrize(
    "params",
    [
        {"take": "0"},
        {"skip": "-1"},
        {"take": "ten"},
        {"sortKey": "colour"},
        {"sortDirection": "sideways"},
    ],
)
def test_bad_paging_parameters_are_400(plan_sandbox: SandboxServer, params: dict[str, str]) -> None:
    assert call(plan_sandbox, "GET", "/exports/plans/P", params=params).status_code == 400


def test_the_older_export_path_serves_the_same_items(plan_sandbox: SandboxServer) -> None:
    newer = call(plan_sandbox, "GET", "/exports/plans/P", params={"take": "3"}).json()
    older = call(plan_sandbox, "GET", "/plans/P/items", params={"take": "3"}).json()

    assert newer == older


def test_items_carry_the_documented_fields(plan_sandbox: SandboxServer) -> None:
    item = call(plan_sandbox, "GET", "/exports/plans/P", params={"take": "2"}).json()["items"][1]

    for field in (
        "id",
        "externalId",
        "sequenceId",
        "level",
        "name",
        "description",
        "statusName",
        "assignedToFullName",
        "members",
        "currentValue",
        "target",
        "lastUpdated",
    ):
        assert field in item
    assert (item["sequenceId"], item["level"]) == ("1.1", 2)


def test_sorting_descending_by_sequence_puts_the_last_outline_number_first(
    plan_sandbox: SandboxServer,
) -> None:
    body = call(
        plan_sandbox, "GET", "/exports/plans/P", params={"sortDirection": "DESC", "take": "1"}
    ).json()

    # 1,600 items = 14 objectives of 111, then "15" and its first 45 descendants.
    assert body["items"][0]["sequenceId"] == "15.5"


def test_a_headerless_csv_with_a_comment_column_is_accepted(sandbox: SandboxServer) -> None:
    response = call(
        sandbox,
        "POST",
        "/api/progressupdates/upload.csv",
        data=b'PX-1.3,on track,,2026-11-01,"Opened, finally"\r\n',
        headers={"Content-Type": "text/csv"},
    )

    assert response.status_code == 202
    assert sandbox.stored_updates()[0].comment == "Opened, finally"


def test_curl_style_bodies_are_recognised_by_name_or_content(sandbox: SandboxServer) -> None:
    # `curl --data-binary @file` sends application/x-www-form-urlencoded.
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    as_json = '[{"externalId": "PX-1.3", "status": "At Risk", "asOfDate": "2026-11-01"}]'

    assert (
        call(sandbox, "POST", "/api/progressupdates/u", data=as_json, headers=form).status_code
        == 202
    )
    assert (
        call(
            sandbox,
            "POST",
            "/api/progressupdates/u.csv",
            data="PX-1.3,At Risk,,2026-11-01\n",
            headers=form,
        ).status_code
        == 202
    )


def test_posting_the_same_update_twice_stores_it_twice(sandbox: SandboxServer) -> None:
    body = '[{"externalId": "PX-1.3", "status": "At Risk", "asOfDate": "2026-11-01"}]'
    for _ in range(2):
        call(
            sandbox,
            "POST",
            "/api/progressupdates/dup.json",
            data=body,
            headers={"Content-Type": "application/json"},
        )

    assert len(sandbox.stored_updates("px-1.3")) == 2


def test_a_refused_request_can_hide_which_row_was_bad(sandbox: SandboxServer) -> None:
    sandbox.set_behaviour(name_rows_in_errors=False)
    body = '[{"externalId": "NOPE", "status": "At Risk", "asOfDate": "2026-11-01"}]'

    response = call(
        sandbox,
        "POST",
        "/api/progressupdates/x.json",
        data=body,
        headers={"Content-Type": "application/json"},
    )

    assert response.status_code == 400
    assert response.json() == {"message": "The import contains invalid rows"}


def test_the_inspection_endpoints_report_without_the_key(sandbox: SandboxServer) -> None:
    call(sandbox, "GET", "/exports/plans/PX-2027")
    fault_plan = {"onRequests": {"2": "503"}}

    assert call(sandbox, "PUT", "/_sandbox/faults", json=fault_plan).status_code == 200
    assert call(sandbox, "GET", "/exports/plans/PX-2027").status_code == 503
    recorded = call(sandbox, "GET", "/_sandbox/requests")
    stats = call(sandbox, "GET", "/_sandbox/stats").json()

    assert [r["status"] for r in recorded.json()] == [200, 503]
    assert sandbox.api_key not in recorded.text
    assert stats["requests"] == 2
