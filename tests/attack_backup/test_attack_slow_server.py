"""A server that is slow on purpose: one plan must not cost the others their backup.

README: "Plans are independent: an invalid plan id, a 403, a 404, an outage, or any
unexpected error ... on one plan does not stop the others; the invocation fails after all
plans were tried". A Lambda has 15 minutes; whatever one plan takes beyond that is taken from
the plans after it (and the run is then killed without a result for any of them).
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest

from tests.conftest import FakeLambdaContext

from .hostile import Answer, handler_for, invoke, item, json_answer, keys, make_bucket, paged

pytestmark = pytest.mark.usefixtures("aws")


def run_in_background(handler: Any, context: Any = None) -> tuple[threading.Thread, dict[str, Any]]:
    box: dict[str, Any] = {}
    thread = threading.Thread(
        target=lambda: box.update(outcome=invoke(handler, {}, context)), daemon=True
    )
    thread.start()
    return thread, box


def test_a_trickling_page_does_not_hold_up_the_next_plan(
    hostile: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = paged({"A": [item(1, "A")], "B": [item(1, "B")]})

    def respond(path: str, query: dict[str, str], headers: dict[str, str]) -> Answer:
        status, extra, body = good(path, query, headers)
        if path.endswith("/A"):
            extra = {**extra, "X-Trickle-Seconds": "0.3"}  # ~600 bytes: about 3 minutes
        return status, extra, body

    server = hostile(respond)
    s3 = make_bucket()
    handler = handler_for(
        monkeypatch, server.base_url, server.ca_file, "A,B", ACHIEVEIT_READ_TIMEOUT_SECONDS="1"
    )
    thread, _ = run_in_background(handler)
    try:
        deadline = time.monotonic() + 30  # 1 s read timeout x 2 attempts x 3 export attempts
        while time.monotonic() < deadline and "backups/B/latest.json" not in keys(s3):
            time.sleep(0.5)
        assert "backups/B/latest.json" in keys(s3)
    finally:
        server.stopping.set()  # end the trickle so the run can finish inside moto
        thread.join(60)


def test_a_plan_that_never_ends_does_not_hold_up_the_next_plan(
    hostile: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    stop = threading.Event()
    good = paged({"B": [item(1, "B")]})

    def respond(path: str, query: dict[str, str], headers: dict[str, str]) -> Answer:
        if not path.endswith("/A"):
            return good(path, query, headers)
        if stop.is_set():
            return 404, {}, b'{"message": "gone"}'
        skip, take = int(query["skip"]), int(query["take"])
        page = [item(n, "A") for n in range(skip, skip + take)]
        return json_answer({"items": page, "totalCount": 10**9})

    server = hostile(respond)
    s3 = make_bucket()
    handler = handler_for(monkeypatch, server.base_url, server.ca_file, "A,B")
    thread, _ = run_in_background(handler, FakeLambdaContext(remaining_ms=60_000))
    try:
        time.sleep(30)
        assert "backups/B/latest.json" in keys(s3), f"{len(server.exports())} requests for A"
    finally:
        stop.set()
        thread.join(60)


def test_latency_below_the_read_timeout_is_only_slow(
    hostile: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = paged({"A": [item(n, "A") for n in range(1, 3001)]})

    def respond(path: str, query: dict[str, str], headers: dict[str, str]) -> Answer:
        time.sleep(0.5)
        return good(path, query, headers)

    server = hostile(respond)
    s3 = make_bucket()
    handler = handler_for(
        monkeypatch, server.base_url, server.ca_file, "A", ACHIEVEIT_READ_TIMEOUT_SECONDS="2"
    )
    result, error = invoke(handler, {})

    assert error is None
    assert result is not None
    assert [p["status"] for p in result["plans"]] == ["complete"]
    latest = json.loads(
        s3.get_object(Bucket="attack-backups-bucket", Key="backups/A/latest.json")["Body"].read()
    )
    assert latest["itemCount"] == 3000
