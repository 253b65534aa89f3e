"""Backoff and Retry-After arithmetic."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest
from achieveit_sync.retry import backoff_delay, parse_retry_after, wait_before_retry
from achieveit_sync.settings import RetrySettings

NOW = datetime(2026, 11, 27, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("3", 3.0),
        (" 0 ", 0.0),
        ("Fri, 27 Nov 2026 12:00:05 GMT", 5.0),
        ("Fri, 27 Nov 2026 11:59:00 GMT", 0.0),  # already past: retry now
        (None, None),
        ("", None),
        ("soon", None),
        ("-5", None),
        ("1.5", None),  # RFC 9110 allows whole seconds only
    ],
)
def test_retry_after_in_seconds_or_as_an_http_date(
    header: str | None, seconds: float | None
) -> None:
    assert parse_retry_after(header, now=NOW) == seconds


def test_backoff_grows_exponentially_and_is_capped() -> None:
    policy = RetrySettings(backoff_base=1.0, backoff_cap=5.0)

    class Highest(random.Random):
        def uniform(self, a: float, b: float) -> float:
            return b

    ceilings = [backoff_delay(attempt, policy, Highest()) for attempt in range(1, 6)]

    assert ceilings == [1.0, 2.0, 4.0, 5.0, 5.0]


def test_backoff_is_jittered_over_the_whole_window() -> None:
    policy = RetrySettings(backoff_base=1.0, backoff_cap=100.0)
    rng = random.Random(7)

    delays = [backoff_delay(4, policy, rng) for _ in range(500)]

    assert min(delays) >= 0
    assert max(delays) <= 8.0
    assert min(delays) < 1.0  # spread over the window, not in lockstep
    assert max(delays) > 7.0


def test_retry_after_replaces_backoff_up_to_the_policy_limit() -> None:
    policy = RetrySettings(max_retry_after=30)
    rng = random.Random(1)

    assert wait_before_retry(1, 12.0, policy, rng) == 12.0
    assert wait_before_retry(1, 31.0, policy, rng) is None
    assert wait_before_retry(1, None, policy, rng) is not None


def test_a_retry_after_of_non_ascii_digits_is_ignored() -> None:
    assert parse_retry_after("²") is None
