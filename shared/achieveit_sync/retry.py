"""Backoff arithmetic for the client's retry loop: pure functions, no I/O.

The loop itself lives in ``client.py`` because only there is it known whether a failed
request may have been processed (urllib3's ``Retry`` cannot tell an ambiguous POST from a
safe one, nor report through our error types).
"""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from achieveit_sync.settings import RetrySettings

_MAX_SECONDS_DIGITS = 8


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date).

    Returns ``None`` for a missing or unreadable header, and 0 for a date in the past.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if text.isascii() and text.isdigit():
        # A year of seconds is as good as forever (the caller gives up); longer digit
        # strings would overflow a float, or pass int()'s digit limit.
        return float(int(text)) if len(text) <= _MAX_SECONDS_DIGITS else math.inf
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT; a naive parse means "-0000"
        when = when.replace(tzinfo=UTC)
    current = now or datetime.now(UTC)
    return max(0.0, (when - current).total_seconds())


def backoff_delay(attempt: int, policy: RetrySettings, rng: random.Random) -> float:
    """Wait before retry number ``attempt`` (1 = the first retry): capped, full jitter.

    Full jitter spreads many clients (several Lambdas) across the whole window so that
    they do not retry in lockstep against a struggling server.
    """
    ceiling = min(policy.backoff_cap, policy.backoff_base * math.pow(2, attempt - 1))
    return rng.uniform(0, ceiling)


def wait_before_retry(
    attempt: int,
    retry_after: float | None,
    policy: RetrySettings,
    rng: random.Random,
) -> float | None:
    """How long to wait before retry ``attempt``, or ``None`` when the server asks for longer
    than the policy allows (give up now rather than sleep away a Lambda's time)."""
    if retry_after is None:
        return backoff_delay(attempt, policy, rng)
    if retry_after > policy.max_retry_after:
        return None
    return retry_after
