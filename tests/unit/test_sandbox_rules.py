"""The sandbox reads submissions and answers requests by the documented rules (it plays the
server in every test, so its strictness is what keeps the client honest). The rules are
called directly here, without HTTP; the recording and fault middlewares on mocked requests.
"""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Any

import pytest
from achieveit_sandbox.faults import Fault, FaultInjection, FaultPlan
from achieveit_sandbox.model import Item, Organisation, Plan, Role, User
from achieveit_sandbox.recording import RecordedRequest, RequestRecorder
from achieveit_sandbox.rules import Answer, ApiFailureError, ApiRules, SandboxBehaviour
from achieveit_sandbox.seed import generate_plan, load_example_organisation
from achieveit_sandbox.submissions import METRIC, PROGRESS, SubmissionError, parse_submission
from aiohttp import web
from aiohttp.test_utils import make_mocked_request


def parse(body: str, kind: str = PROGRESS, content_type: str = "", name: str = "x"):
    return parse_submission(kind, body.encode(), content_type, name)


def test_json_needs_exactly_the_documented_field_names() -> None:
    rows = parse('[{"externalId": "A", "status": "on TRACK", "asOfDate": "2026-11-01"}]')

    assert rows[0].status == "On Track"
    with pytest.raises(SubmissionError, match="Row 1: unknown field 'externalID'"):
        parse('[{"externalID": "A", "status": "On Track", "asOfDate": "2026-11-01"}]')


def test_json_must_be_an_array_of_objects() -> None:
    with pytest.raises(SubmissionError, match="array"):
        parse('{"externalId": "A"}', content_type="application/json")
    with pytest.raises(SubmissionError, match="Row 2: each update must be a JSON object"):
        parse('[{"externalId": "A", "status": "On Track", "asOfDate": "2026-11-01"}, 5]')


def test_csv_without_header_uses_the_default_order() -> None:
    rows = parse("A,At Risk,0.5,2026-11-01,hello\r\nB,achieved,,2026-11-02\r\n")

    assert [(r.external_id, r.status, r.metric_value, r.as_of_date, r.comment) for r in rows] == [
        ("A", "At Risk", 0.5, date(2026, 11, 1), "hello"),
        ("B", "Achieved", None, date(2026, 11, 2), None),
    ]


def test_csv_with_a_header_takes_any_column_order_and_both_metric_spellings() -> None:
    rows = parse(
        "As Of Date,Comment,Current Metric Value,status,EXTERNAL ID\n"
        '2026-11-01,"a, b",7,Off Track,A\n'
    )

    assert (rows[0].external_id, rows[0].metric_value, rows[0].comment) == ("A", 7.0, "a, b")
    assert rows[0].row == 2


def test_metric_csv_default_order() -> None:
    rows = parse("M-1,12,2026-11-01\n", kind=METRIC, content_type="text/csv")

    assert (rows[0].external_id, rows[0].metric_value) == ("M-1", 12.0)


def test_empty_rows_are_refused() -> None:
    with pytest.raises(SubmissionError, match="Row 2: empty rows are not allowed"):
        parse("A,On Track,,2026-11-01\n,,,\nB,On Track,,2026-11-01\n")


def test_the_time_of_an_iso_date_time_is_ignored() -> None:
    rows = parse("A,On Track,,2026-11-01T23:59:59-05:00\n")

    assert rows[0].as_of_date == date(2026, 11, 1)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("A,Done,,2026-11-01", "'Done' is not a valid status"),
        ("A,On Track,20%,2026-11-01", "'20%' is not a number"),
        ("A,On Track,,11/01/2026", "not an ISO-8601 date"),
        ("A,On Track,,2026-02-30", "not an ISO-8601 date"),
        (",On Track,,2026-11-01", "externalId is required"),
        ("A,,,2026-11-01", "status is required"),
        ("A,On Track,nan,2026-11-01", "finite"),
    ],
)
def test_bad_rows_are_refused_naming_the_row(line: str, message: str) -> None:
    with pytest.raises(SubmissionError, match=message) as error:
        parse(line + "\n")

    assert error.value.row == 1


def test_metric_updates_need_a_value() -> None:
    with pytest.raises(SubmissionError, match="metricValue is required"):
        parse('[{"externalId": "M", "asOfDate": "2026-11-01"}]', kind=METRIC)


def test_utf8_bom_is_accepted_and_other_encodings_refused() -> None:
    assert parse_submission(PROGRESS, b"\xef\xbb\xbfA,On Track,,2026-11-01\n", "", "x")
    with pytest.raises(SubmissionError, match="not UTF-8"):
        parse_submission(PROGRESS, "A,On Track,,2026-11-01,caf\xe9\n".encode("latin-1"), "", "x")


def test_generated_plans_are_deterministic_outlines() -> None:
    plan = generate_plan("P", 250, seed=3)

    assert [i.sequence_id for i in plan.items[:4]] == ["1", "1.1", "1.1.1", "1.1.2"]
    assert plan.items[111].sequence_id == "2"
    assert len({i.external_id for i in plan.items}) == 250
    assert [i.id for i in generate_plan("P", 250, seed=3).items] == [i.id for i in plan.items]
    assert sorted(plan.items, key=lambda i: i.sequence_key) == plan.items


def test_the_example_organisation_has_a_service_account_with_edit_rights() -> None:
    organisation, service_account = load_example_organisation()

    assert len(organisation.plans) == 2
    assert sum(len(p.items) for p in organisation.plans.values()) >= 30
    assert all(service_account.role_on_plan(p) >= 2 for p in organisation.plans)
    assert any(i.has_metric for p in organisation.plans.values() for i in p.items)


def test_fault_plans_follow_request_numbers_then_seeded_rates() -> None:
    by_number = FaultPlan(on_requests={2: Fault.RESET_AFTER})
    assert [by_number.choose(n, "/api/x") for n in (1, 2, 3)] == [None, Fault.RESET_AFTER, None]
    assert by_number.choose(2, "/_sandbox/updates") is None

    draws = [FaultPlan(rates={Fault.UNAVAILABLE: 0.1}, seed=9) for _ in range(2)]
    sequences = [[plan.choose(n, "/api/x") for n in range(1, 1001)] for plan in draws]
    assert sequences[0] == sequences[1]
    assert 60 < sequences[0].count(Fault.UNAVAILABLE) < 140


# -- the API's rules, called directly ----------------------------------------------------

EDITOR = "API-KEY editor-key"
VIEWER = "API-KEY viewer-key"


def small_organisation() -> Organisation:
    """Plan P (an editor who may not edit item L, a viewer) and plan Q, which neither sees."""

    def item(sequence_id: str, external_id: str, name: str, **fields: Any) -> Item:
        return Item(f"id-{external_id}", "P", sequence_id, name, external_id, **fields)

    organisation = Organisation(
        users=[
            User("u-editor", "Ed", "ed@example.org", "editor-key", {"P": Role.EDITOR}),
            User("u-viewer", "Vi", "vi@example.org", "viewer-key", {"P": Role.VIEWER}),
        ]
    )
    organisation.users[0].item_roles["id-L"] = Role.VIEWER
    organisation.add_plan(
        Plan(
            "P",
            "Plan",
            [
                item("1", "A", "Grow"),
                item("1.1", "M", "Revenue", has_metric=True, current_value=3.0),
                item("1.2", "B", "Alpha"),
                item("1.10", "C", "alpha"),
                item("2", "L", "Locked"),
            ],
        )
    )
    organisation.add_plan(Plan("Q", "Other plan"))
    return organisation


def export(
    rules: ApiRules, authorization: str | None = EDITOR, plan_id: str = "P", **query: str
) -> Answer:
    return rules.export(authorization, plan_id, query)


def submit(
    rules: ApiRules, rows: str, kind: str = PROGRESS, authorization: str = EDITOR, number: int = 1
) -> Answer:
    body = rows.encode()
    submitter = rules.admit_submission(authorization, len(body))
    return rules.submit(kind, "upload.csv", submitter, body, "text/csv", number)


def refusal(action: Any) -> tuple[int, str]:
    with pytest.raises(ApiFailureError) as failure:
        action()
    return failure.value.status, failure.value.message


def sequence_ids(answer: Answer) -> list[str]:
    return [item["sequenceId"] for item in answer.json_body["items"]]


@pytest.mark.parametrize(
    ("authorization", "message"),
    [
        (None, "Missing or malformed Authorization header"),
        ("Bearer editor-key", "Missing or malformed Authorization header"),
        ("API-KEY not-a-key", "The API key is not valid"),
    ],
)
def test_a_missing_malformed_or_unknown_key_is_401(authorization: str | None, message: str) -> None:
    rules = ApiRules(small_organisation())

    for action in (
        lambda: export(rules, authorization),
        lambda: rules.admit_submission(authorization, 10),
    ):
        status, text = refusal(action)
        assert status == 401
        assert text.startswith(message)


def test_api_access_switched_off_is_403_even_for_a_good_key() -> None:
    rules = ApiRules(small_organisation())
    with rules.organisation() as organisation:
        organisation.api_access_enabled = False

    assert refusal(lambda: export(rules)) == (
        403,
        "API access is not enabled for this organization",
    )
    assert refusal(lambda: rules.admit_submission(EDITOR, 10))[0] == 403


def test_an_unknown_plan_is_404_and_a_plan_without_a_role_403() -> None:
    rules = ApiRules(small_organisation())

    assert refusal(lambda: export(rules, plan_id="NOPE")) == (404, "Plan 'NOPE' was not found")
    assert refusal(lambda: export(rules, plan_id="Q")) == (
        403,
        "You do not have access to plan 'Q'",
    )
    assert export(rules, VIEWER).status == 200


def test_export_pages_by_skip_and_take_in_outline_order() -> None:
    rules = ApiRules(small_organisation())

    answer = export(rules, skip="1", take="2")

    assert answer.status == 200
    assert sequence_ids(answer) == ["1.1", "1.2"]
    assert answer.json_body["totalCount"] == 5
    assert sequence_ids(export(rules)) == ["1", "1.1", "1.2", "1.10", "2"]


def test_take_above_the_maximum_is_clamped() -> None:
    organisation = Organisation()
    organisation.add_plan(generate_plan("BIG", 1600, seed=1))
    organisation.users.append(User("u", "U", "u@example.org", "k", {"BIG": Role.VIEWER}))
    rules = ApiRules(organisation)

    answer = rules.export("API-KEY k", "BIG", {"take": "5000"})

    assert len(answer.json_body["items"]) == 1500
    assert answer.json_body["totalCount"] == 1600


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"take": "0"}, "skip must be 0 or more and take 1 or more"),
        ({"skip": "-1"}, "skip must be 0 or more and take 1 or more"),
        ({"take": "ten"}, "skip and take must be whole numbers"),
        ({"sortKey": "colour"}, "Unknown sortKey 'colour'"),
        ({"sortDirection": "sideways"}, "sortDirection must be 'asc' or 'desc'"),
    ],
)
def test_bad_paging_is_400(query: dict[str, str], message: str) -> None:
    rules = ApiRules(small_organisation())

    assert refusal(lambda: export(rules, **query)) == (400, message)


def test_sorting_puts_missing_values_first_and_breaks_ties_by_outline_number() -> None:
    rules = ApiRules(small_organisation())

    by_name = export(rules, sortKey="name")
    by_value_descending = export(rules, sortKey="currentValue", sortDirection="DESC")

    # "Alpha" and "alpha" tie; 1.2 comes before 1.10 as outline numbers compare.
    assert sequence_ids(by_name) == ["1.2", "1.10", "1", "2", "1.1"]
    assert sequence_ids(by_value_descending)[0] == "1.1"


def test_the_misbehaviours_ignore_skip_and_leave_out_the_total() -> None:
    rules = ApiRules(small_organisation(), SandboxBehaviour(ignore_skip=True))
    rules.set_behaviour(omit_total_count=True)

    answer = export(rules, skip="3", take="1")

    assert sequence_ids(answer) == ["1"]
    assert "totalCount" not in answer.json_body


def test_an_accepted_submission_is_applied_and_answered_with_a_receipt() -> None:
    rules = ApiRules(small_organisation())
    by_status_before = export(rules, sortKey="status")

    answer = submit(rules, "A,On Track,,2026-11-01,done\nM,At Risk,7.5,2026-11-02\n", number=4)

    assert answer.status == 202
    assert answer.json_body["name"] == "upload.csv"
    assert answer.json_body["rowsReceived"] == 2
    stored = rules.stored_updates()
    assert [(u.external_id, u.status, u.metric_value) for u in stored] == [
        ("A", "On Track", None),
        ("M", "At Risk", 7.5),
    ]
    assert {(u.sequence, u.request_number, u.user_id) for u in stored} == {
        (1, 4, "u-editor"),
        (2, 4, "u-editor"),
    }
    # An order sorted before the change is not served again after it.
    by_status_after = export(rules, sortKey="status")
    assert sequence_ids(by_status_before) == ["1", "1.1", "1.2", "1.10", "2"]
    assert sequence_ids(by_status_after) == ["1.1", "1.2", "1.10", "2", "1"]
    exported = {i["externalId"]: i for i in by_status_after.json_body["items"]}
    assert (exported["A"]["statusName"], exported["A"]["updates"]) == ("On Track", 1)
    assert exported["M"]["currentValue"] == 7.5


def test_posting_the_same_update_twice_stores_it_twice() -> None:
    rules = ApiRules(small_organisation())

    submit(rules, "A,On Track,,2026-11-01\n", number=1)
    submit(rules, "A,On Track,,2026-11-01\n", number=2)

    assert [u.request_number for u in rules.stored_updates()] == [1, 2]


@pytest.mark.parametrize(
    ("rows", "kind", "status", "message"),
    [
        ("A,On Track,,2026-11-01\nX,On Track,,2026-11-01\n", PROGRESS, 400,
         "Row 2: unknown external ID 'X'"),
        ("A,On Track,,2026-11-01\nL,On Track,,2026-11-01\n", PROGRESS, 403,
         "Row 2: you do not have permission to update item 'L' (2) in plan 'P'"),
        ("M,On Track,,2026-11-01\n", PROGRESS, 400,
         "Row 1: item 'M' has a metric; a metric value is required"),
        ("A,5,2026-11-01\n", METRIC, 400, "Row 1: item 'A' has no metric"),
        ("A,Done,,2026-11-01\n", PROGRESS, 400, "Row 1: 'Done' is not a valid status"),
    ],
)  # fmt: skip
def test_one_bad_row_refuses_the_whole_submission_and_stores_nothing(
    rows: str, kind: str, status: int, message: str
) -> None:
    rules = ApiRules(small_organisation())

    assert refusal(lambda: submit(rules, rows, kind)) == (status, message)
    assert rules.stored_updates() == []
    assert export(rules).json_body["items"][0]["statusName"] == "Not Started"


def test_refusals_can_hide_which_row_was_bad() -> None:
    rules = ApiRules(small_organisation(), SandboxBehaviour(name_rows_in_errors=False))

    assert refusal(lambda: submit(rules, "X,On Track,,2026-11-01\n")) == (
        400,
        "The import contains invalid rows",
    )
    assert refusal(lambda: submit(rules, "L,On Track,,2026-11-01\n")) == (
        403,
        "You do not have permission to update one or more items",
    )


def test_a_viewer_may_export_but_not_submit() -> None:
    rules = ApiRules(small_organisation())

    assert (
        refusal(lambda: submit(rules, "A,On Track,,2026-11-01\n", authorization=VIEWER))[0] == 403
    )


def test_too_big_a_body_or_too_many_rows_is_413() -> None:
    rules = ApiRules(small_organisation(), SandboxBehaviour(max_body_bytes=40))
    editor = rules.admit_submission(EDITOR, None)
    long_body = b"A,On Track,,2026-11-01,a comment of some length\n"

    # Refused on the declared length before the body is read, and on the bytes themselves.
    assert refusal(lambda: rules.admit_submission(EDITOR, 41)) == (
        413,
        "The body exceeds 40 bytes",
    )
    assert refusal(lambda: rules.submit(PROGRESS, "x", editor, long_body, "", 1))[0] == 413
    rules.set_behaviour(max_body_bytes=1000, max_rows_per_request=1)
    two_rows = "A,On Track,,2026-11-01\nB,On Track,,2026-11-01\n"
    assert refusal(lambda: submit(rules, two_rows)) == (413, "At most 1 rows per request")


@pytest.mark.parametrize(
    ("submit_body", "expected"),
    [("empty", Answer(200)), ("text", Answer(200, text_body="Import queued"))],
)
def test_the_submission_answer_can_misbehave(submit_body: str, expected: Answer) -> None:
    behaviour = SandboxBehaviour(submit_status=200, submit_body=submit_body)
    rules = ApiRules(small_organisation(), behaviour)

    assert submit(rules, "A,On Track,,2026-11-01\n") == expected


def test_the_request_log_learns_whose_key_without_judging_it() -> None:
    rules = ApiRules(small_organisation())
    with rules.organisation() as organisation:
        organisation.api_access_enabled = False

    assert rules.user_id_for(VIEWER) == "u-viewer"
    assert rules.user_id_for("API-KEY nobody") is None
    assert rules.user_id_for("viewer-key") is None


# -- recording and fault injection, on mocked requests -------------------------------------


def serve(plan: FaultPlan, *requests: web.Request) -> tuple[list[RecordedRequest], list[int]]:
    """Pass requests through the two middlewares, recording outermost, as the server does."""
    recorder = RequestRecorder(ApiRules(small_organisation()).user_id_for)
    faults = FaultInjection(plan, recorder, latency_seconds=lambda: 0.0)

    async def api(request: web.Request) -> web.StreamResponse:
        return web.json_response({"ok": True})

    async def inner(request: web.Request) -> web.StreamResponse:
        return await faults.middleware(request, api)

    async def run() -> list[int]:
        return [(await recorder.middleware(r, inner)).status for r in requests]

    statuses = asyncio.run(run())
    return recorder.recorded_requests(), statuses


def get(path: str = "/exports/plans/P") -> web.Request:
    return make_mocked_request("GET", path, headers={"Authorization": EDITOR})


def test_a_faulted_request_is_recorded_with_its_fault_and_status() -> None:
    plan = FaultPlan(on_requests={2: Fault.THROTTLE}, retry_after="7")

    recorded, statuses = serve(plan, get(), get(), get("/_sandbox/requests"))

    assert statuses == [200, 429, 200]
    assert [(r.number, r.fault, r.status, r.user_id) for r in recorded] == [
        (1, None, 200, "u-editor"),
        (2, "429", 429, "u-editor"),
    ]
    assert all(r.finished_at is not None for r in recorded)


def test_a_reset_connection_is_recorded_with_its_fault_and_no_status() -> None:
    request = get()

    recorded, _ = serve(FaultPlan(on_requests={1: Fault.RESET_AFTER}), request)

    assert request.transport is not None
    request.transport.abort.assert_called_once()  # type: ignore[attr-defined]
    assert (recorded[0].fault, recorded[0].status) == ("reset-after", None)
