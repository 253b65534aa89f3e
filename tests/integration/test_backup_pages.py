"""Export pages too large to parse at once are asked for in smaller pages, so that a plan
of large items is still backed up completely (issue 10, point 8). Scaled down here (the
caps are patched small); the full-size memory figures are in BENCHMARKS.md."""

from __future__ import annotations

import gzip
import json
from typing import Any

import pytest
from achieveit_sandbox import SandboxServer
from achieveit_sync import client as client_module

from tests.integration.backup_support import Clock, plans_sandbox, read_bytes, read_json, run, s3
from tests.integration.conftest import ClientFactory

__all__ = ["plans_sandbox", "s3"]
pytestmark = pytest.mark.usefixtures("aws")


def test_a_plan_whose_pages_would_be_too_large_is_fetched_in_smaller_pages(
    plans_sandbox: SandboxServer,
    client_for: ClientFactory,
    s3: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Scaled down: a 256 KB page cap, and items of ~8 KB, so that 40 items are 320 KB.
    monkeypatch.setattr(client_module, "MAX_EXPORT_PAGE_BYTES", 256 * 1024)
    with plans_sandbox.organisation() as organisation:
        for position, item in enumerate(organisation.plans["SMALL"].items):
            item.description = f"{position:04d}" + "d" * 8000

    [outcome] = run(client_for(plans_sandbox), s3, ["SMALL"], Clock()).outcomes

    assert (outcome.status, outcome.items) == ("complete", 40)
    manifest = read_json(s3, read_json(s3, "backups/SMALL/latest.json")["manifest"])
    assert manifest["pagesFetched"] >= 3  # at most ~128 KB a page once sized from the first
    items = json.loads(gzip.decompress(read_bytes(s3, manifest["files"]["items.json.gz"]["key"])))
    assert [i["description"][:4] for i in items] == [f"{n:04d}" for n in range(40)]


def test_a_page_that_would_take_too_much_memory_to_parse_is_fetched_in_smaller_pages(
    plans_sandbox: SandboxServer,
    client_for: ClientFactory,
    s3: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # JSON like [{},{},...] takes ~24 bytes of memory a character once parsed.
    monkeypatch.setattr(client_module, "MAX_EXPORT_PAGE_MEMORY", 4 * 1024 * 1024)
    with plans_sandbox.organisation() as organisation:
        for item in organisation.plans["SMALL"].items:
            item.members = [{}] * 2000  # type: ignore[list-item]

    [outcome] = run(client_for(plans_sandbox), s3, ["SMALL"], Clock()).outcomes

    assert (outcome.status, outcome.items) == ("complete", 40)
    manifest = read_json(s3, read_json(s3, "backups/SMALL/latest.json")["manifest"])
    assert manifest["pagesFetched"] > 1


def test_an_item_too_large_on_its_own_fails_its_plan_with_the_reason(
    plans_sandbox: SandboxServer,
    client_for: ClientFactory,
    s3: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(client_module, "MAX_EXPORT_PAGE_BYTES", 64 * 1024)
    with plans_sandbox.organisation() as organisation:
        organisation.plans["SMALL"].items[7].description = "x" * 100_000

    [small, big] = run(client_for(plans_sandbox), s3, ["SMALL", "P3001"], Clock()).outcomes

    assert small.status == "failed"
    assert "the item at position 8 (in sequenceId order) alone is larger" in (small.error or "")
    assert big.status == "complete"
