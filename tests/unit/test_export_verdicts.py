"""When an export may call itself complete (issue: outside eyes on backups). A plan served from
memory by a client whose ``export_page`` is overridden: no sockets. Each page repeats the
last item of the page before, and a shifted boundary (items added or removed before it while
the plan was paged) means items may have been skipped, whatever the counts say."""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from achieveit_sync.api_key import StaticApiKey
from achieveit_sync.backup.exporter import export_plan
from achieveit_sync.backup.run import FailureCause, back_up_plans
from achieveit_sync.backup.targets import LocalTarget
from achieveit_sync.client import AchieveItClient, ExportPage, ExportPageTooLargeError
from achieveit_sync.errors import OutOfTimeError, PlanTooLargeError
from achieveit_sync.settings import ClientSettings

Mutation = Callable[[list[dict[str, Any]], int], None]


class MemoryClient(AchieveItClient):
    """A plan in memory; ``mutate(items, request_number)`` runs before each answer."""

    def __init__(self, items: list[dict[str, Any]], total: int | None = None) -> None:
        super().__init__(ClientSettings(), StaticApiKey("k" * 20))
        self.items = items
        self.total = total
        self.requests: list[tuple[int, int]] = []
        self.deadlines: list[float | None] = []
        self.mutate: Mutation = lambda items, n: None
        self.too_large: Callable[[list[dict[str, Any]]], bool] = lambda page: False

    def export_page(self, plan_id: str, **options: Any) -> ExportPage:
        skip, take = options["skip"], options["take"]
        deadline = options.get("deadline")
        self.deadlines.append(deadline)
        if deadline is not None and time.monotonic() >= deadline:
            raise OutOfTimeError("out of time")
        self.requests.append((skip, take))
        self.mutate(self.items, len(self.requests))
        page = self.items[skip : skip + take]
        if self.too_large(page):
            raise ExportPageTooLargeError("export", "too large")
        total = len(self.items) if self.total is None else self.total
        return ExportPage(plan_id, skip, take, [dict(i) for i in page], total, 100, 100)


def item(n: int, **extra: Any) -> dict[str, Any]:
    return {"id": f"id-{n:05d}", "sequenceId": str(n), "name": f"Item {n}", **extra}


def exported_ids(client: MemoryClient, **options: Any) -> tuple[list[str], Any]:
    export = export_plan(client, "P", page_size=10, **options)
    body = export.files[0].body
    items = json.loads(gzip.decompress(body.read()))
    export.close()
    return [i.get("id") for i in items], export


def test_one_removed_and_one_added_while_paged_is_caught_and_exported_again() -> None:
    client = MemoryClient([item(n) for n in range(30)])

    def between_pages(items: list[dict[str, Any]], request: int) -> None:
        if request == 2:  # after page 1: item 3 removed, a new item at the end
            del items[3]
            items.append(item(99))

    client.mutate = between_pages

    ids, export = exported_ids(client)

    first, second = export.attempts
    assert not first.complete
    assert any("did not start where the previous one ended" in p for p in first.problems)
    assert second.complete
    assert ids == [i["id"] for i in client.items]  # id-00010 was not skipped
    assert client.requests[:2] == [(0, 10), (9, 11)]  # page 2 repeats item 10, then 10 new


def test_an_item_added_before_the_boundary_is_caught() -> None:
    client = MemoryClient([item(n) for n in range(25)], total=25)
    client.mutate = lambda items, n: items.insert(0, item(500)) if n == 2 else None

    _, export = exported_ids(client, max_attempts=1)

    assert not export.complete
    assert "did not start where the previous one ended" in export.attempts[0].problems[0]


def test_a_change_that_keeps_the_boundary_loses_no_item_that_stayed() -> None:
    client = MemoryClient([item(n) for n in range(30)])

    def both_before(items: list[dict[str, Any]], request: int) -> None:
        if request == 2:  # one removed and one added, both on page 1: nothing shifts
            del items[3]
            items.insert(5, item(500))

    client.mutate = both_before

    ids, export = exported_ids(client)

    assert export.complete
    assert len(export.attempts) == 1
    assert {f"id-{n:05d}" for n in range(30) if n != 3} <= set(ids)


def test_items_too_large_to_share_a_page_with_the_repeated_one_are_still_checked() -> None:
    client = MemoryClient([item(n) for n in range(6)])
    client.too_large = lambda page: len(page) > 1  # every item fills a page alone

    ids, export = exported_ids(client)

    assert export.complete
    assert ids == [f"id-{n:05d}" for n in range(6)]
    # after the first item: the repeated one alone, then the next alone
    assert (0, 1) in client.requests
    assert (1, 1) in client.requests


@pytest.mark.parametrize(
    ("items", "problem"),
    [
        ([item(1), {"name": "no id"}, item(2)], "have no id"),
        ([item(1), item(2, id=None), item(3)], "have no id"),
        ([item(1), item(2, id="")], "have no id"),
        ([item(1), item(2, id="id-00001")], "more than one page"),
    ],
)
def test_items_that_cannot_be_told_apart_are_not_counted(
    items: list[dict[str, Any]], problem: str
) -> None:
    _, export = exported_ids(MemoryClient(items), max_attempts=1)

    assert not export.complete
    assert any(problem in p for p in export.attempts[0].problems), export.attempts[0].problems


def test_a_plan_claiming_more_items_than_allowed_fails_at_the_first_page() -> None:
    client = MemoryClient([item(n) for n in range(10)], total=10**9)

    with pytest.raises(PlanTooLargeError, match="BACKUP_MAX_ITEMS"):
        exported_ids(client, max_items=1000)

    assert len(client.requests) == 1


def test_a_plan_sending_more_items_than_allowed_is_cut_off() -> None:
    client = MemoryClient([item(n) for n in range(200)], total=None)
    client.total = 0
    client.export_page = _without_total(client.export_page)  # type: ignore[method-assign]

    with pytest.raises(PlanTooLargeError, match="more than 50 items received"):
        exported_ids(client, max_items=50)

    assert len(client.requests) <= 7


def _without_total(answer: Callable[..., ExportPage]) -> Callable[..., ExportPage]:
    def page(plan_id: str, **options: Any) -> ExportPage:
        got = answer(plan_id, **options)
        return ExportPage(got.plan_id, got.skip, got.take, got.items, None, 100, 100)

    return page


def test_no_request_starts_past_the_deadline() -> None:
    client = MemoryClient([item(n) for n in range(30)])

    with pytest.raises(OutOfTimeError):
        exported_ids(client, deadline=time.monotonic() - 1)

    assert client.requests == []


def test_nan_and_infinity_are_stored_as_strings_with_a_warning() -> None:
    from achieveit_sync.exact_json import NonFiniteNumber

    client = MemoryClient([item(1, currentValue=NonFiniteNumber("NaN")), item(2)])

    export = export_plan(client, "P")
    text = gzip.decompress(export.files[0].body.read()).decode()
    export.close()

    assert export.complete
    assert json.loads(text)[0]["currentValue"] == "NaN"
    [warning] = export.warnings
    assert "1 number(s) came as NaN or Infinity" in warning


def test_every_plan_gets_a_share_of_the_time_and_a_result(tmp_path: Path) -> None:
    client = MemoryClient([item(n) for n in range(3)])
    deadline = time.monotonic() + 1000

    run = back_up_plans(
        ["A", "B", "C"],
        client=client,
        target=LocalTarget(tmp_path),
        deadline=deadline,
    )

    assert [o.status for o in run.outcomes] == ["complete"] * 3
    a, b, c = (d for d in client.deadlines if d is not None)
    assert a == pytest.approx(deadline - 120, abs=5)  # B and C keep 60 s each
    assert b == pytest.approx(deadline - 60, abs=5)
    assert c == pytest.approx(deadline, abs=5)


def test_plans_reached_with_no_time_left_are_not_tried_but_have_a_result(tmp_path: Path) -> None:
    client = MemoryClient([item(n) for n in range(3)])

    run = back_up_plans(
        ["A", "B"],
        client=client,
        target=LocalTarget(tmp_path),
        deadline=time.monotonic() + 0.5,
    )

    assert [(o.plan_id, o.status, o.cause) for o in run.outcomes] == [
        ("A", "failed", FailureCause.SERVICE),
        ("B", "failed", FailureCause.SERVICE),
    ]
    assert all("not tried: out of time" in (o.error or "") for o in run.outcomes)
    assert client.requests == []
