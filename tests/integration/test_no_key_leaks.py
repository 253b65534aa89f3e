"""The API key never reaches a log line, an exception, a repr or the server's records,
including on every failure path."""

from __future__ import annotations

import ssl
import traceback
from datetime import date

import pytest
from achieveit_sandbox import Fault, FaultPlan, Role, SandboxServer
from achieveit_sync.errors import AchieveItSyncError
from achieveit_sync.updates import ProgressUpdate, Status

from tests.conftest import RECOGNISABLE_KEY, all_log_text
from tests.integration.conftest import ClientFactory, SandboxFactory

UPDATE = [ProgressUpdate("PX-1.3", Status.ON_TRACK, date(2026, 11, 1))]


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
def test_the_key_appears_nowhere_on_any_path(
    sandbox: SandboxServer,
    start_sandbox: SandboxFactory,
    client_for: ClientFactory,
    captured_logs: pytest.LogCaptureFixture,
) -> None:
    assert sandbox.api_key == RECOGNISABLE_KEY
    client = client_for(sandbox, max_attempts=2)
    errors: list[AchieveItSyncError] = []

    def attempt(action: object) -> None:
        try:
            action()  # type: ignore[operator]
        except AchieveItSyncError as exc:
            errors.append(exc)

    # Success, retries, ambiguity, refusals of every kind.
    sandbox.set_faults(
        FaultPlan(
            on_requests={
                1: Fault.THROTTLE,
                3: Fault.RESET_AFTER,
                4: Fault.UNAVAILABLE,
                5: Fault.UNAVAILABLE,
            },
            retry_after="0",
        )
    )
    attempt(lambda: client.export_page("PX-2027"))
    attempt(lambda: client.submit_updates("ambiguous.json", UPDATE))
    attempt(lambda: client.export_page("PX-2027"))
    attempt(lambda: client.export_page("no-such-plan"))
    attempt(
        lambda: client.submit_updates(
            "bad.json", [ProgressUpdate("NOPE", Status.ON_TRACK, date(2026, 11, 1))]
        )
    )
    with sandbox.organisation():
        sandbox.service_account.plan_roles["PX-2027"] = Role.VIEWER
    attempt(lambda: client.submit_updates("denied.json", UPDATE))
    old_tls = start_sandbox(tls_versions=(ssl.TLSVersion.TLSv1_1, ssl.TLSVersion.TLSv1_1))
    old_tls.service_account.api_key = RECOGNISABLE_KEY
    attempt(lambda: client_for(old_tls).export_page("PX-2027"))

    assert len(errors) == 6
    texts = [all_log_text(captured_logs)]
    for error in errors:
        texts += [str(error), repr(error), "".join(traceback.format_exception(error))]
    texts.append(repr(client))
    texts += [repr(r.as_dict()) for r in sandbox.recorded_requests()]
    texts += [repr(u.as_dict()) for u in sandbox.stored_updates()]
    assert captured_logs.records, "the scenario should have logged retries"
    assert all(RECOGNISABLE_KEY not in text for text in texts)
