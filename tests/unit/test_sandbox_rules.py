"""The sandbox reads submissions by the documented rules (it plays the server in every test,
so its strictness is what keeps the client honest)."""

from __future__ import annotations

from datetime import date

import pytest
from achieveit_sandbox.faults import Fault, FaultPlan
from achieveit_sandbox.seed import generate_plan, load_example_organisation
from achieveit_sandbox.submissions import METRIC, PROGRESS, SubmissionError, parse_submission


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
