"""Fault injection: which API requests the sandbox answers badly, and how.

A ``FaultPlan`` picks a fault per request, either by request number (1-based, counting API
requests only, not ``/_sandbox`` inspection calls) or at random by rates with a seed, so a
failing run can be repeated exactly. ``FaultInjection`` is the middleware that carries the
plan out, just inside the request log, which it tells what it chose.
"""

from __future__ import annotations

import asyncio
import random
import socket
import struct
import threading
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from enum import StrEnum
from typing import Any
from urllib.parse import quote

from aiohttp import web

from achieveit_sandbox.recording import INSPECTION_PREFIX, REQUEST_NUMBER, RequestRecorder


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


_ANSWERED_WITHOUT_PROCESSING = (
    Fault.THROTTLE,
    Fault.SERVER_ERROR,
    Fault.BAD_GATEWAY,
    Fault.UNAVAILABLE,
)
_DROPS_THE_ANSWER = (Fault.RESET_BEFORE, Fault.RESET_AFTER)


class FaultInjection:
    """Answers the API requests that the fault plan picks badly; every API request first
    takes the configured latency."""

    def __init__(
        self,
        plan: FaultPlan,
        recorder: RequestRecorder,
        latency_seconds: Callable[[], float],
    ) -> None:
        """``latency_seconds`` is read per request, since the behaviour can change while
        the server runs."""
        self._plan = plan
        self._recorder = recorder
        self._latency_seconds = latency_seconds
        self._lock = threading.Lock()

    def set_plan(self, plan: FaultPlan) -> None:
        with self._lock:
            self._plan = plan

    @web.middleware
    async def middleware(
        self,
        request: web.Request,
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        if request.path.startswith(INSPECTION_PREFIX):
            return await handler(request)
        # Chosen on arrival, before any wait, so that a seeded plan draws in request order.
        with self._lock:
            plan = self._plan
            fault = plan.choose(request[REQUEST_NUMBER], request.path)
        if fault is not None:
            self._recorder.note_fault(
                request, fault.value, answer_dropped=fault in _DROPS_THE_ANSWER
            )
        if latency := self._latency_seconds():
            await asyncio.sleep(latency)
        if fault is Fault.RESET_BEFORE:
            return _reset_connection(request)
        response: web.StreamResponse
        if fault in _ANSWERED_WITHOUT_PROCESSING:
            response = _fault_response(fault, plan.retry_after)
        else:
            response = await handler(request)
        if fault is Fault.SLOW:
            await asyncio.sleep(plan.slow_seconds)
        if fault is Fault.ECHO_KEY:
            response = _echo_key_response(response.status, request.headers.get("Authorization", ""))
        if fault is Fault.RESET_AFTER:
            return _reset_connection(request)
        return response


def _fault_response(fault: Fault, retry_after: str) -> web.Response:
    if fault is Fault.THROTTLE:
        return web.json_response(
            {"message": "Too many requests"},
            status=429,
            headers={"Retry-After": _retry_after_value(retry_after)},
        )
    return web.json_response({"message": "Injected server error"}, status=int(fault.value))


def _echo_key_response(status: int, authorization: str) -> web.Response:
    key = authorization.split(" ", 1)[-1]
    escaped = "".join(f"\\u{ord(ch):04X}" if ch.isalnum() else ch for ch in key)
    body = (
        '{"message": "rejected key '
        + key
        + '", "escaped": "'
        + escaped.replace("/", "\\/")
        + '", "query": "key='
        + quote(key, safe="")
        + '"}'
    )
    return web.Response(status=status, text=body, content_type="application/json")


def _retry_after_value(setting: str) -> str:
    if setting.startswith("http-date:"):
        seconds = float(setting.split(":", 1)[1])
        return format_datetime(datetime.now(UTC) + timedelta(seconds=seconds), usegmt=True)
    return setting


def _reset_connection(request: web.Request) -> web.Response:
    """Drop the connection with a TCP reset, without sending any answer.

    Returns a response only because a handler must: it never reaches the client.
    """
    transport = request.transport
    if transport is not None:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
    return web.Response(status=500)
