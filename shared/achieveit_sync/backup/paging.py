"""Paging a plan's export whole: every page of a plan in order, each checked against the one
before (the repeated boundary items, a server that ignores ``skip`` or never stops, a plan
larger than ``BACKUP_MAX_ITEMS``), and page sizes that stay safe to parse. This is the
backup's policy for "is the export whole?"; the client only fetches one page
(``AchieveItClient.export_page``).

The page limits are the client's (``client.MAX_EXPORT_PAGE_BYTES``,
``client.MAX_EXPORT_PAGE_MEMORY``), read from there each time.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from dataclasses import replace

from achieveit_sync import client as api
from achieveit_sync.client import (
    DEFAULT_SORT_KEY,
    MAX_PAGE_SIZE,
    AchieveItClient,
    ExportPage,
    ExportPageTooLargeError,
    SortDirection,
)
from achieveit_sync.errors import PaginationError, PlanChangedWhilePagedError, PlanTooLargeError
from achieveit_sync.plan_ids import check_plan_id

log = logging.getLogger(__name__)

_PAGES_BEYOND_TOTAL = 5
"""Extra pages allowed past ``ceil(totalCount / take)`` before paging is declared runaway
(items added while paging legitimately push a plan past its first ``totalCount``)."""
_MAX_PAGES_WITHOUT_TOTAL = 10_000


def iter_plan_pages(
    client: AchieveItClient,
    plan_id: str,
    *,
    take: int = MAX_PAGE_SIZE,
    sort_key: str = DEFAULT_SORT_KEY,
    sort_direction: SortDirection = SortDirection.ASC,
    overlap: int = 0,
    max_items: int | None = None,
    deadline: float | None = None,
) -> Iterator[ExportPage]:
    """Every page of a plan, in order, with the fewest requests (``client.export_page``).

    Stops when the items seen reach ``totalCount`` or a page comes back short, so a
    3,001-item plan takes three requests and a 3,000-item plan two. A server that
    ignores ``skip`` or never stops raises ``PaginationError`` instead of looping.

    Pages stay small enough to parse safely: a page that is too large is asked for
    again with half the items (down to a single item), and each next request asks for
    as many items as the previous page's size says will fit, up to ``take``. Only an
    item too large on its own fails the export.

    ``overlap``: each page after the first is asked for from ``overlap`` items before
    where the previous page ended, and those items must be the ones that page ended
    with (same ids); otherwise items were added or removed before that point while the
    plan was paged, so some may have been skipped: ``PlanChangedWhilePagedError``. The
    repeated items are not yielded again.

    ``max_items``: a plan whose ``totalCount`` says more, or that keeps sending items
    past it, raises ``PlanTooLargeError``. ``deadline`` (``time.monotonic()``): no
    request starts after it and none runs past it (``OutOfTimeError``).
    """
    check_plan_id(plan_id)
    if not 0 <= overlap < take:
        raise ValueError(f"overlap must be 0 or more and less than take, got {overlap}")
    pager = _Pager(plan_id, take, sort_key, overlap, max_items)
    while True:
        back = pager.overlap_now()
        try:
            page = client.export_page(
                plan_id,
                skip=pager.skip - back,
                take=min(MAX_PAGE_SIZE, pager.take + back),
                sort_key=sort_key,
                sort_direction=sort_direction,
                deadline=deadline,
            )
        except ExportPageTooLargeError as exc:
            if pager.take == 1 and back:
                # The repeated items and the next one do not fit one page: check the
                # repeated ones on their own, then ask for the next alone.
                _check_page_boundary(client, pager, sort_key, sort_direction, deadline)
                continue
            pager.too_large(exc)
            continue
        page, received_all = pager.accept(page, back)
        yield page
        del page  # the next page must not be fetched while this one is still held
        if not pager.advance(received_all):
            return


def _check_page_boundary(
    client: AchieveItClient,
    pager: _Pager,
    sort_key: str,
    sort_direction: SortDirection,
    deadline: float | None,
) -> None:
    """Ask for the items just before the next page alone and check they are the ones
    the last page ended with."""
    expected = pager.ended_with
    page = client.export_page(
        pager.plan_id,
        skip=pager.skip - len(expected),
        take=len(expected),
        sort_key=sort_key,
        sort_direction=sort_direction,
        deadline=deadline,
    )
    found = tuple(item.get("id") for item in page.items)
    _check_boundary(pager.plan_id, pager.skip, expected, found)
    pager.boundary_checked = True


def _pages_left(total: int, skip: int, take: int) -> int:
    """Requests still allowed for a plan of ``total`` items before paging counts as runaway."""
    return math.ceil(max(total - skip, 0) / take) + _PAGES_BEYOND_TOTAL


def _next_take(page: ExportPage, requested: int) -> int:
    """How many items to ask for next: ``requested``, or fewer when pages like this one would
    fill more than half of either page limit (headroom for items larger than the last)."""
    received = len(page.items)
    if not received:
        return requested
    by_bytes = (api.MAX_EXPORT_PAGE_BYTES // 2) * received // max(page.body_bytes, 1)
    by_memory = (api.MAX_EXPORT_PAGE_MEMORY // 2) * received // max(page.memory_estimate, 1)
    return max(1, min(requested, by_bytes, by_memory))


class _Pager:
    """Where ``iter_plan_pages`` is in a plan: the next position, how many items to ask
    for, and the bounds that stop a server that never ends."""

    def __init__(
        self, plan_id: str, take: int, sort_key: str, overlap: int, max_items: int | None
    ) -> None:
        self.plan_id = plan_id
        self.max_take = take
        self.sort_key = sort_key
        self.overlap = overlap
        self.max_items = max_items
        self.skip = 0
        """The position of the first item not received yet."""
        self.take = take
        """How many new items the next request asks for."""
        self.pages = 0
        self.page_limit = _MAX_PAGES_WITHOUT_TOTAL
        self.first_total: int | None = None
        self.total: int | None = None
        self.previous_page_ids: tuple[object, ...] | None = None
        self.ended_with: tuple[object, ...] = ()
        """The ids the last page ended with (``overlap`` of them)."""
        self.boundary_checked = False
        self.next_take = take
        self.asked = take
        self.received = 0

    def overlap_now(self) -> int:
        """How many items the next request repeats."""
        return 0 if self.boundary_checked else min(self.overlap, self.skip)

    def too_large(self, exc: ExportPageTooLargeError) -> None:
        """Ask for half as many items next (raise when a single item is too large)."""
        if self.take == 1:
            raise ExportPageTooLargeError(
                exc.operation,
                f"the item at position {self.skip + 1} (in {self.sort_key} order) alone is "
                f"larger than a page may be ({exc.reason}), so the plan cannot be backed up "
                "completely; shorten that item in AchieveIt (its description or other long "
                "fields) and run the backup again",
            ) from None
        self.take = max(1, self.take // 2)
        log.warning(
            "export page too large; asking for fewer items",
            extra={"plan": self.plan_id, "skip": self.skip, "take": self.take},
        )
        if self.first_total is not None:
            self.page_limit = max(
                self.page_limit, self.pages + _pages_left(self.first_total, self.skip, self.take)
            )

    def accept(self, page: ExportPage, back: int) -> tuple[ExportPage, int]:
        """Check a page that arrived (repeats, boundary, size) and return it without the
        repeated items, with how many items it held in all."""
        self.pages += 1
        received_all, self.total = len(page.items), page.total_count
        page_ids = tuple(item.get("id") for item in page.items)
        if received_all and page_ids == self.previous_page_ids:
            raise PaginationError(
                f"export of plan '{self.plan_id}': the page at skip={self.skip - back} "
                "repeats the previous page; the server appears to ignore 'skip'"
            )
        self.previous_page_ids = page_ids
        if back:
            _check_boundary(self.plan_id, self.skip, self.ended_with[-back:], page_ids[:back])
        total = page.total_count
        if self.max_items is not None and total is not None and total > self.max_items:
            raise PlanTooLargeError(
                f"export of plan '{self.plan_id}': the plan says it has {total:,} items, more "
                f"than the {self.max_items:,} an export reads (BACKUP_MAX_ITEMS); if that is "
                "right, raise BACKUP_MAX_ITEMS"
            )
        self.asked = page.take
        if back:
            page = replace(page, skip=self.skip, items=page.items[back:])
        self.received = max(received_all - back, 0)
        self.next_take = min(_next_take(page, self.max_take), MAX_PAGE_SIZE - self.overlap)
        if self.overlap and self.received:
            self.ended_with = page_ids[-self.overlap :]
        self.boundary_checked = False
        return page, received_all

    def advance(self, received_all: int) -> bool:
        """Move past the page just yielded; False when it was the last."""
        self.skip += self.received
        if received_all < self.asked:
            return False
        total = self.total
        if self.max_items is not None and self.skip > self.max_items:
            raise PlanTooLargeError(
                f"export of plan '{self.plan_id}': more than {self.max_items:,} items received "
                f"(totalCount {total}), the most an export reads (BACKUP_MAX_ITEMS); giving up"
            )
        if total is not None:
            if self.skip >= total:
                return False
            if self.first_total is None:  # fixed from the first answer: a growing plan
                self.first_total = total  # cannot move it
                self.page_limit = self.pages + _pages_left(total, self.skip, self.next_take)
        if self.next_take < self.take and self.first_total is not None:
            self.page_limit = max(
                self.page_limit,
                self.pages + _pages_left(self.first_total, self.skip, self.next_take),
            )
        self.take = self.next_take
        if self.pages >= self.page_limit:
            raise PaginationError(
                f"export of plan '{self.plan_id}': still receiving full pages after "
                f"{self.pages} requests ({self.skip} items, totalCount {total}); giving up"
            )
        return True


def _check_boundary(
    plan_id: str, skip: int, expected: tuple[object, ...], found: tuple[object, ...]
) -> None:
    """The items just before ``skip`` must be those the previous page ended with."""
    if found != expected:
        shown = ", ".join(_short(value) for value in found) or "nothing"
        raise PlanChangedWhilePagedError(
            f"export of plan '{plan_id}': the page after position {skip} did not start where "
            f"the previous one ended (expected id {_short(expected[-1])}, found {shown}): "
            "items were added or removed before it while the plan was paged, so some may "
            "have been skipped"
        )


def _short(value: object) -> str:
    text = ascii(value)
    return text if len(text) <= 60 else text[:60] + "..."
