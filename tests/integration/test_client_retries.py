"""Retries: transient failures are retried with backoff and Retry-After, up to a limit;
a POST that may have been applied is reported as ambiguous, never re-sent."""

from __future__ import annotations

import socket
from datetime import date

import pytest
from achieveit_sandbox import Fault, FaultPlan, SandboxServer
from achieveit_sync.api_key import ApiKey, StaticApiKey
from achieveit_sync.client import AchieveItClient
from achieveit_sync.errors import AmbiguousDeliveryError, AuthenticationError, RetryableApiError
from achieveit_sync.settings import ClientSettings, RetrySettings
from achieveit_sync.updates import ProgressUpdate, Status

from tests.integration.conftest import ClientFactory, SandboxFactory

PX_PLAN = "PX-2027"
ONE_UPDATE = [ProgressUpdate("PX-1.3", Status.AT_RISK, date(2026, 11, 1), comment="retry test")]


def wait_between(sandbox: SandboxServer, first: int, second: int) -> float:
    """Seconds between the sandbox answering request ``first`` and receiving ``second``."""
    by_number = {r.number: r for r in sandbox.recorded_requests()}
    answered = by_number[first].finished_at
    assert answered is not None
    return by_number[second].received_at - answered


@pytest.mark.parametrize("retry_after", ["1", "http-date:2"])
def test_retry_after_is_honoured_in_seconds_and_as_a_date(
    sandbox: SandboxServer, client: AchieveItClient, retry_after: str
) -> None:
    sandbox.set_faults(FaultPlan(on_requests={1: Fault.THROTTLE}, retry_after=retry_after))

    page = client.export_page(PX_PLAN)

    assert len(page.items) == 12
    assert [r.status for r in sandbox.recorded_requests()] == [429, 200]
    # An HTTP date has whole-second precision, so "2 s ahead" may be 1.x s when it is read.
    assert wait_between(sandbox, 1, 2) >= 0.99


def test_a_retry_after_longer_than_allowed_gives_up_at_once_and_says_so(
    sandbox: SandboxServer,
) -> None:
    sandbox.set_faults(FaultPlan(on_requests={1: Fault.THROTTLE}, retry_after="600"))
    settings = ClientSettings(
        base_url=sandbox.base_url,
        ca_bundle=sandbox.ca_file,
        retry=RetrySettings(max_retry_after=30),
    )

    with AchieveItClient(settings, StaticApiKey(sandbox.api_key)) as client:
        with pytest.raises(RetryableApiError) as error:
            client.export_page(PX_PLAN)

    assert error.value.retry_after == 600
    assert "600s" in str(error.value)
    assert len(sandbox.recorded_requests()) == 1


def test_retries_stop_at_the_limit(sandbox: SandboxServer, client_for: ClientFactory) -> None:
    sandbox.set_faults(FaultPlan(rates={Fault.UNAVAILABLE: 1.0}))

    with pytest.raises(RetryableApiError) as error:
        client_for(sandbox, max_attempts=3).export_page(PX_PLAN)

    assert error.value.status == 503
    assert error.value.attempts == 3
    assert "after 3 attempts" in str(error.value)
    assert len(sandbox.recorded_requests()) == 3


def test_backoff_waits_grow_between_attempts(
    sandbox: SandboxServer, client_for: ClientFactory
) -> None:
    sandbox.set_faults(FaultPlan(rates={Fault.SERVER_ERROR: 1.0}))
    waits: list[float] = []

    with pytest.raises(RetryableApiError):
        client_for(sandbox, max_attempts=4, backoff_base=1.0, sleep=waits.append).export_page(
            PX_PLAN
        )

    assert len(waits) == 3
    assert all(0 <= wait <= ceiling for wait, ceiling in zip(waits, (1.0, 2.0, 4.0), strict=True))


@pytest.mark.parametrize(
    "fault", [Fault.SERVER_ERROR, Fault.BAD_GATEWAY, Fault.UNAVAILABLE, Fault.THROTTLE]
)
def test_a_refused_post_is_retried_and_stored_once(
    sandbox: SandboxServer, client: AchieveItClient, fault: Fault
) -> None:
    sandbox.set_faults(FaultPlan(on_requests={1: fault}, retry_after="0"))

    result = client.submit_updates("transient.json", ONE_UPDATE)

    assert result.attempts == 2
    assert len(sandbox.stored_updates("PX-1.3")) == 1


def test_a_post_whose_answer_was_lost_is_ambiguous_and_not_resent(
    sandbox: SandboxServer, client: AchieveItClient
) -> None:
    sandbox.set_faults(FaultPlan(on_requests={1: Fault.RESET_AFTER}))

    with pytest.raises(AmbiguousDeliveryError, match="may have been applied"):
        client.submit_updates("lost-answer.json", ONE_UPDATE)

    assert len(sandbox.recorded_requests()) == 1
    assert len(sandbox.stored_updates("PX-1.3")) == 1  # applied once, never twice


def test_a_post_reset_before_processing_is_still_reported_as_ambiguous(
    sandbox: SandboxServer, client: AchieveItClient
) -> None:
    # From the client's side a reset before and after processing look the same: the body
    # went out and no answer came. Honesty beats optimism: report, do not re-send.
    sandbox.set_faults(FaultPlan(on_requests={1: Fault.RESET_BEFORE}))

    with pytest.raises(AmbiguousDeliveryError):
        client.submit_updates("reset-before.json", ONE_UPDATE)

    assert len(sandbox.recorded_requests()) == 1
    assert sandbox.stored_updates() == []


def test_a_post_answered_too_late_is_ambiguous(
    sandbox: SandboxServer, client_for: ClientFactory
) -> None:
    sandbox.set_faults(FaultPlan(on_requests={1: Fault.SLOW}, slow_seconds=1.0))

    with pytest.raises(AmbiguousDeliveryError, match="ReadTimeout"):
        client_for(sandbox, read_timeout=0.2).submit_updates("slow.json", ONE_UPDATE)

    assert len(sandbox.recorded_requests()) == 1
    assert len(sandbox.stored_updates("PX-1.3")) == 1


@pytest.mark.parametrize("fault", [Fault.RESET_BEFORE, Fault.RESET_AFTER])
def test_a_read_is_simply_retried_after_a_reset(
    sandbox: SandboxServer, client: AchieveItClient, fault: Fault
) -> None:
    sandbox.set_faults(FaultPlan(on_requests={1: fault}))

    page = client.export_page(PX_PLAN)

    assert len(page.items) == 12
    assert len(sandbox.recorded_requests()) == 2


def test_a_connection_that_was_never_made_is_retryable_not_ambiguous(
    sandbox: SandboxServer,
) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    settings = ClientSettings(
        base_url=f"https://127.0.0.1:{closed_port}",
        ca_bundle=sandbox.ca_file,
        retry=RetrySettings(max_attempts=2, backoff_base=0.01),
    )

    with AchieveItClient(settings, StaticApiKey(sandbox.api_key)) as client:
        with pytest.raises(RetryableApiError, match="refused") as error:
            client.submit_updates("never-sent.json", ONE_UPDATE)

    assert error.value.attempts == 2


class RotatingKey:
    """A provider whose cached key is stale until refreshed (a rotated secret)."""

    def __init__(self, stale: str, fresh: str | None) -> None:
        self._current = ApiKey(stale)
        self._fresh = ApiKey(fresh) if fresh else None
        self.refreshes = 0

    def current(self) -> ApiKey:
        return self._current

    def refresh(self) -> ApiKey | None:
        self.refreshes += 1
        if self._fresh is None or self._fresh == self._current:
            return None
        self._current = self._fresh
        return self._current


def test_a_rotated_key_is_refreshed_once_after_401(sandbox: SandboxServer) -> None:
    provider = RotatingKey(stale="revoked-key", fresh=sandbox.api_key)
    settings = ClientSettings(base_url=sandbox.base_url, ca_bundle=sandbox.ca_file)

    with AchieveItClient(settings, provider) as client:
        page = client.export_page(PX_PLAN, take=3)

    assert len(page.items) == 3
    assert provider.refreshes == 1
    assert [r.status for r in sandbox.recorded_requests()] == [401, 200]


def test_a_401_without_a_newer_key_fails_after_one_request(sandbox: SandboxServer) -> None:
    provider = RotatingKey(stale="revoked-key", fresh=None)
    settings = ClientSettings(base_url=sandbox.base_url, ca_bundle=sandbox.ca_file)

    with AchieveItClient(settings, provider) as client, pytest.raises(AuthenticationError):
        client.export_page(PX_PLAN)

    assert provider.refreshes == 1
    assert len(sandbox.recorded_requests()) == 1


def test_a_refreshed_key_that_is_also_refused_does_not_loop(
    start_sandbox: SandboxFactory,
) -> None:
    sandbox = start_sandbox()
    provider = RotatingKey(stale="revoked-key", fresh="also-revoked-key")
    settings = ClientSettings(base_url=sandbox.base_url, ca_bundle=sandbox.ca_file)

    with AchieveItClient(settings, provider) as client, pytest.raises(AuthenticationError):
        client.export_page(PX_PLAN)

    assert len(sandbox.recorded_requests()) == 2


def test_the_client_counts_attempts_failures_and_latency_for_metrics(
    sandbox: SandboxServer, client: AchieveItClient
) -> None:
    sandbox.set_faults(FaultPlan(on_requests={1: Fault.UNAVAILABLE}))

    client.export_page(PX_PLAN)
    stats = client.take_stats()

    assert (stats.attempts, stats.failures) == (2, 1)
    assert stats.average_latency_ms > 0
    assert client.take_stats().attempts == 0  # counting starts afresh
