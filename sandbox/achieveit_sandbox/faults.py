"""Fault injection: which API requests the sandbox answers badly, and how.

A ``FaultPlan`` picks a fault per request, either by request number (1-based, counting API
requests only, not ``/_sandbox`` inspection calls) or at random by rates with a seed, so a
failing run can be repeated exactly.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Fault(StrEnum):
    THROTTLE = "429"
    """429 Too Many Requests with a Retry-After header; nothing processed."""
    SERVER_ERROR = "500"
    BAD_GATEWAY = "502"
    UNAVAILABLE = "503"
    """5xx answers; nothing processed."""
    SLOW = "slow"
    """The request is processed, then the answer waits ``slow_seconds``."""
    RESET_BEFORE = "reset-before"
    """The connection is reset after the request arrives, before it is processed."""
    RESET_AFTER = "reset-after"
    """The request is processed, then the connection is reset: the answer is lost."""
    ECHO_KEY = "echo-key"
    """The request is processed as usual, but the answer's body (same status) repeats the
    caller's API key: as is, JSON-escaped and percent-encoded, as a careless server might."""


@dataclass
class FaultPlan:
    on_requests: dict[int, Fault] = field(default_factory=dict)
    rates: dict[Fault, float] = field(default_factory=dict)
    seed: int = 0
    retry_after: str = "1"
    """The Retry-After value sent with 429 (delta-seconds, or ``http-date:N`` for a date
    N seconds ahead)."""
    slow_seconds: float = 2.0
    paths: tuple[str, ...] = ("/api/", "/exports/", "/plans/")
    """Only requests under these prefixes are subject to faults."""
    _rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        total = sum(self.rates.values())
        if any(rate < 0 for rate in self.rates.values()) or total > 1:
            raise ValueError("fault rates must be non-negative and add up to at most 1")
        self._rng = random.Random(self.seed)

    def choose(self, request_number: int, path: str) -> Fault | None:
        if not path.startswith(self.paths):
            return None
        if request_number in self.on_requests:
            return self.on_requests[request_number]
        if not self.rates:
            return None
        draw = self._rng.random()
        for fault, rate in self.rates.items():
            if draw < rate:
                return fault
            draw -= rate
        return None

    @classmethod
    def from_dict(cls, document: Mapping[str, Any]) -> FaultPlan:
        """Build from JSON such as ``{"onRequests": {"1": "429"}, "rates": {"503": 0.1}}``."""
        return cls(
            on_requests={int(n): Fault(f) for n, f in document.get("onRequests", {}).items()},
            rates={Fault(f): float(r) for f, r in document.get("rates", {}).items()},
            seed=int(document.get("seed", 0)),
            retry_after=str(document.get("retryAfter", "1")),
            slow_seconds=float(document.get("slowSeconds", 2.0)),
        )
