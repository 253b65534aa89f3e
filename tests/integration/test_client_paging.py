"""Exporting a plan: every page, every item, the fewest requests, and no endless loops."""

from __future__ import annotations

import pytest
from achieveit_sandbox import SandboxServer
from achieveit_sync.backup.paging import iter_plan_pages
from achieveit_sync.client import MAX_PAGE_SIZE, AchieveItClient, SortDirection
from achieveit_sync.errors import PaginationError

from tests.conftest import plan_items
from tests.integration.conftest import ClientFactory, SandboxFactory, plan_organisation


@pytest.fixture
def big_sandbox(start_sandbox: SandboxFactory) -> SandboxServer:
    return start_sandbox(plan_organisation(("P3001", 3001), ("P3000", 3000), ("EMPTY", 0)))


def test_a_3001_item_plan_is_fetched_completely_in_three_requests(
    big_sandbox: SandboxServer, client_for: ClientFactory
) -> None:
    items = list(plan_items(client_for(big_sandbox), "P3001"))

    assert len(items) == 3001
    assert len({item["id"] for item in items}) == 3001
    requests = big_sandbox.recorded_requests()
    assert [(r.query["skip"], r.query["take"]) for r in requests] == [
        ("0", "1500"),
        ("1500", "1500"),
        ("3000", "1500"),
    ]
    assert {r.query["sortKey"] for r in requests} == {"sequenceId"}


def test_a_plan_of_exactly_two_pages_takes_two_requests_thanks_to_total_count(
    big_sandbox: SandboxServer, client_for: ClientFactory
) -> None:
    pages = list(iter_plan_pages(client_for(big_sandbox), "P3000"))

    assert [len(page.items) for page in pages] == [1500, 1500]
    assert pages[0].total_count == 3000
    assert len(big_sandbox.recorded_requests()) == 2


def test_items_arrive_in_outline_order(
    big_sandbox: SandboxServer, client_for: ClientFactory
) -> None:
    sequence_ids = [item["sequenceId"] for item in plan_items(client_for(big_sandbox), "P3001")]

    as_numbers = [tuple(int(part) for part in s.split(".")) for s in sequence_ids]
    assert as_numbers == sorted(as_numbers)
    assert sequence_ids[:3] == ["1", "1.1", "1.1.1"]


def test_sort_key_and_direction_are_passed_through(
    big_sandbox: SandboxServer, client_for: ClientFactory
) -> None:
    items = list(
        plan_items(
            client_for(big_sandbox),
            "P3000",
            take=1000,
            sort_key="name",
            sort_direction=SortDirection.DESC,
        )
    )

    names = [item["name"].casefold() for item in items]
    assert names == sorted(names, reverse=True)
    assert len(items) == 3000


def test_an_empty_plan_takes_one_request(
    big_sandbox: SandboxServer, client_for: ClientFactory
) -> None:
    assert list(plan_items(client_for(big_sandbox), "EMPTY")) == []
    assert len(big_sandbox.recorded_requests()) == 1


def test_without_total_count_a_short_page_ends_the_export(
    big_sandbox: SandboxServer, client_for: ClientFactory
) -> None:
    big_sandbox.set_behaviour(omit_total_count=True)

    pages = list(iter_plan_pages(client_for(big_sandbox), "P3000"))

    assert [len(page.items) for page in pages] == [1500, 1500, 0]
    assert all(page.total_count is None for page in pages)


def test_a_server_that_ignores_skip_is_detected_instead_of_looping(
    big_sandbox: SandboxServer, client_for: ClientFactory
) -> None:
    big_sandbox.set_behaviour(ignore_skip=True)

    with pytest.raises(PaginationError, match="ignore 'skip'"):
        list(plan_items(client_for(big_sandbox), "P3001"))

    assert len(big_sandbox.recorded_requests()) == 2


def grow_plan(sandbox: SandboxServer, plan_id: str, count: int, tag: int) -> None:
    """Append ``count`` new items to the end of the plan's outline."""
    with sandbox.organisation() as organisation:
        for extra in plan_organisation(("X", count)).plans["X"].items:
            extra.id = f"grow-{tag}-{extra.id}"
            extra.external_id = f"grow-{tag}-{extra.external_id}"
            extra.sequence_id = f"{1000 + tag}.{extra.sequence_id}"
            organisation.add_item(plan_id, extra)


def test_a_server_that_never_stops_is_cut_off(
    big_sandbox: SandboxServer, client_for: ClientFactory
) -> None:
    # The plan grows as fast as it is read, so totalCount is never reached.
    client = client_for(big_sandbox)
    pages_read = []

    def read_while_growing() -> None:
        for page in iter_plan_pages(client, "P3000", take=1000):
            pages_read.append(page)
            grow_plan(big_sandbox, "P3000", 1000, tag=len(pages_read))

    with pytest.raises(PaginationError, match="still receiving full pages"):
        read_while_growing()

    assert len(pages_read) == 3000 // 1000 + 5


@pytest.mark.parametrize("take", [0, MAX_PAGE_SIZE + 1])
def test_take_outside_the_documented_range_is_refused_before_sending(
    client: AchieveItClient, sandbox: SandboxServer, take: int
) -> None:
    with pytest.raises(ValueError, match="take"):
        client.export_page("PX-2027", take=take)

    assert sandbox.recorded_requests() == []
