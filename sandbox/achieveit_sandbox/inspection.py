"""The ``/_sandbox/*`` routes: what the sandbox stored and saw, and its fault plan, over HTTP
for a sandbox run from the shell (and the demo), where a test cannot call it in-process.

They answer without the API key and are not themselves recorded (see ``recording``).
"""

from __future__ import annotations

from typing import Protocol

from aiohttp import web

from achieveit_sandbox.faults import FaultPlan
from achieveit_sandbox.model import StoredUpdate
from achieveit_sandbox.recording import INSPECTION_PREFIX, RecordedRequest


class Inspectable(Protocol):
    """What the routes read and change: the server's own methods for tests."""

    def stored_updates(self) -> list[StoredUpdate]: ...

    def recorded_requests(self) -> list[RecordedRequest]: ...

    @property
    def max_concurrent_requests(self) -> int: ...

    def set_faults(self, faults: FaultPlan) -> None: ...


def add_inspection_routes(router: web.UrlDispatcher, sandbox: Inspectable) -> None:
    async def updates(request: web.Request) -> web.Response:
        return web.json_response([u.as_dict() for u in sandbox.stored_updates()])

    async def requests(request: web.Request) -> web.Response:
        return web.json_response([r.as_dict() for r in sandbox.recorded_requests()])

    async def stats(request: web.Request) -> web.Response:
        return web.json_response(
            {
                "requests": len(sandbox.recorded_requests()),
                "updatesStored": len(sandbox.stored_updates()),
                "maxConcurrentRequests": sandbox.max_concurrent_requests,
            }
        )

    async def replace_faults(request: web.Request) -> web.Response:
        try:
            faults = FaultPlan.from_dict(await request.json())
        except (ValueError, TypeError, KeyError) as exc:
            return web.json_response({"message": f"bad fault plan: {exc}"}, status=400)
        sandbox.set_faults(faults)
        return web.json_response({"ok": True})

    router.add_get(f"{INSPECTION_PREFIX}updates", updates)
    router.add_get(f"{INSPECTION_PREFIX}requests", requests)
    router.add_get(f"{INSPECTION_PREFIX}stats", stats)
    router.add_put(f"{INSPECTION_PREFIX}faults", replace_faults)
