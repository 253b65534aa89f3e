"""Access that ends mid-run: a key that turns invalid (401), a user who loses access to the
plan (403). Clear errors, no retry storm, the work done so far reported."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from achieveit_sandbox import Role, SandboxServer

from tests.conftest import RECOGNISABLE_KEY
from tests.integration.ingest_stack import IngestStack
from tests.stress.conftest import Scale
from tests.stress.harness import make_files


def after_parts(stack: IngestStack, parts: int, change: Callable[[], None]) -> None:
    """Apply ``change`` to the sandbox once ``parts`` parts were accepted."""
    client = stack.service.client
    real_send = client.send_submission
    accepted = 0

    def send(submission: Any) -> Any:
        nonlocal accepted
        if accepted == parts:
            change()
            accepted += 1
        result = real_send(submission)
        accepted += 1
        return result

    client.send_submission = send  # type: ignore[method-assign]


def one_big_file(stack: IngestStack, scale: Scale) -> str:
    [dropped] = make_files(1, 2_500, ["LA"], scale.plan_size, seed=1)
    stack.drop(dropped.key, dropped.body)
    return dropped.key


def test_a_key_revoked_mid_run_stops_the_file_at_once(
    load_stack: IngestStack, load_sandbox: SandboxServer, scale: Scale
) -> None:
    key = one_big_file(load_stack, scale)

    def revoke() -> None:
        with load_sandbox.organisation():
            load_sandbox.service_account.api_key = "rotated-elsewhere"

    after_parts(load_stack, 2, revoke)

    load_stack.deliver(rounds=1, must_drain=False)

    report = load_stack.report(key)
    assert report["status"] == "failed"
    assert report["stopReason"] == "api_refused"
    assert "401" in report["fileError"]["reason"]
    assert report["counts"]["published"] == 1000  # the two parts before the revocation
    assert report["counts"]["notSent"] == report["counts"]["valid"] - 1000
    refused = [r for r in load_sandbox.recorded_requests() if r.status == 401]
    assert len(refused) == 1  # no retry storm: one refused request, then stop
    assert RECOGNISABLE_KEY not in load_stack.text(f"reports/{key}.json")


def test_a_user_losing_access_mid_run_stops_without_isolating_every_row(
    load_stack: IngestStack, load_sandbox: SandboxServer, scale: Scale
) -> None:
    key = one_big_file(load_stack, scale)

    def lose_access() -> None:
        with load_sandbox.organisation():
            load_sandbox.service_account.plan_roles["LA"] = Role.VIEWER

    after_parts(load_stack, 2, lose_access)

    load_stack.deliver(rounds=1, must_drain=False)

    report = load_stack.report(key)
    assert report["status"] == "failed"
    assert "refused" in report["fileError"]["reason"]
    assert "permission" in report["fileError"]["reason"]
    assert report["counts"]["published"] == 1000
    refused = [r for r in load_sandbox.recorded_requests() if r.status == 403]
    assert 1 < len(refused) <= 2 * 10 + 3  # a few probes, not one request per row
    assert load_stack.keys(key) == [key]  # not archived: it waits for the access to return
