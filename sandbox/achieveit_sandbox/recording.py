"""The request log: the outermost middleware numbers every API request and records what was
seen of it (never the key), including the fault injected and the status finally answered.

``/_sandbox/`` inspection calls are neither numbered nor recorded, so a test that looks at
the log does not change it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

from aiohttp import web

INSPECTION_PREFIX = "/_sandbox/"

REQUEST_NUMBER = web.RequestKey("sandbox_request_number", int)
"""Every API request's number (1-based, in arrival order), for the layers inside."""

_ANSWER_DROPPED = web.RequestKey("sandbox_answer_dropped", bool)


@dataclass(frozen=True)
class RecordedRequest:
    """One API request as the sandbox saw it. Never holds the key."""

    number: int
    method: str
    path: str
    query: dict[str, str]
    authorization_scheme: str | None
    """The first word of the Authorization header (``API-KEY`` when well-formed)."""
    user_id: str | None
    content_type: str | None
    body_bytes: int
    peer_port: int
    received_at: float
    """``time.monotonic()`` when the request arrived (comparable within one process)."""
    fault: str | None
    status: int | None = None
    """``None`` while in progress, or when the connection was reset instead of answered."""
    finished_at: float | None = None
    """``None`` while the request is still in progress."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "authorizationScheme": self.authorization_scheme,
            "userId": self.user_id,
            "contentType": self.content_type,
            "bodyBytes": self.body_bytes,
            "peerPort": self.peer_port,
            "receivedAt": self.received_at,
            "finishedAt": self.finished_at,
            "fault": self.fault,
            "status": self.status,
        }


class RequestRecorder:
    """Numbers and records API requests, and counts how many are in progress at once."""

    def __init__(self, user_id_for: Callable[[str | None], str | None]) -> None:
        """``user_id_for`` names the user whose key an Authorization header carries."""
        self._user_id_for = user_id_for
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._in_flight = 0
        self._max_in_flight = 0

    def recorded_requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def max_concurrent_requests(self) -> int:
        with self._lock:
            return self._max_in_flight

    def note_fault(self, request: web.Request, fault: str, *, answer_dropped: bool) -> None:
        """Record the fault chosen for ``request`` as soon as it is chosen; a request whose
        answer is dropped (its connection reset) is then recorded without a status."""
        request[_ANSWER_DROPPED] = answer_dropped
        position = _position_of(request[REQUEST_NUMBER])
        with self._lock:
            self._requests[position] = replace(self._requests[position], fault=fault)

    @web.middleware
    async def middleware(
        self,
        request: web.Request,
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        if request.path.startswith(INSPECTION_PREFIX):
            return await handler(request)
        authorization = request.headers.get("Authorization")
        user_id = self._user_id_for(authorization)
        peer = request.transport.get_extra_info("peername") if request.transport else None
        with self._lock:
            number = len(self._requests) + 1
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
            self._requests.append(
                RecordedRequest(
                    number=number,
                    method=request.method,
                    path=request.path,
                    query=dict(request.query),
                    authorization_scheme=authorization.split(" ", 1)[0] if authorization else None,
                    user_id=user_id,
                    content_type=request.headers.get("Content-Type"),
                    body_bytes=request.content_length or 0,
                    peer_port=int(peer[1]) if peer else 0,
                    received_at=time.monotonic(),
                    fault=None,
                )
            )
        request[REQUEST_NUMBER] = number
        status: int | None = None
        try:
            response = await handler(request)
            if not request.get(_ANSWER_DROPPED, False):
                status = response.status
            return response
        finally:
            with self._lock:
                self._in_flight -= 1
                position = _position_of(number)
                self._requests[position] = replace(
                    self._requests[position], status=status, finished_at=time.monotonic()
                )


def _position_of(number: int) -> int:
    """Where a request's record sits: numbers are handed out as records are appended."""
    return number - 1
