"""The AchieveIt sandbox: a local HTTPS server (aiohttp) that behaves like the documented API.

Run it in-process (``SandboxServer(...).start()``, as the pytest fixture does) or from the
shell (``achieveit-sync sandbox``). It serves HTTPS only, TLS 1.2 at least, with a
certificate from a throw-away trustme CA written where the caller asks.

The API's rules, and the documented choices where AchieveIt's behaviour is unknown, live in
``rules``; this module starts and stops the server, records requests and injects faults.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import struct
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import trustme
from aiohttp import web

from achieveit_sandbox.faults import Fault, FaultPlan
from achieveit_sandbox.model import Organisation, StoredUpdate, User
from achieveit_sandbox.rules import Answer, ApiFailureError, ApiRules, SandboxBehaviour
from achieveit_sandbox.submissions import METRIC, PROGRESS

_REQUEST_NUMBER = web.RequestKey("sandbox_request_number", int)


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


@dataclass
class _State:
    faults: FaultPlan
    lock: threading.Lock = field(default_factory=threading.Lock)
    requests: list[RecordedRequest] = field(default_factory=list)
    request_counter: int = 0
    in_flight: int = 0
    max_in_flight: int = 0


class SandboxServer:
    """An AchieveIt organisation served over HTTPS on 127.0.0.1 (a free port by default)."""

    def __init__(
        self,
        organisation: Organisation,
        service_account: User,
        *,
        ca_file: Path,
        host: str = "127.0.0.1",
        port: int = 0,
        behaviour: SandboxBehaviour | None = None,
        faults: FaultPlan | None = None,
        tls_versions: tuple[ssl.TLSVersion, ssl.TLSVersion] = (
            ssl.TLSVersion.TLSv1_2,
            ssl.TLSVersion.MAXIMUM_SUPPORTED,
        ),
    ) -> None:
        self.service_account = service_account
        self._host = host
        self._requested_port = port
        self._tls_versions = tls_versions
        self._rules = ApiRules(organisation, behaviour)
        self._state = _State(faults or FaultPlan())
        self._ca = trustme.CA(organization_name="achieveit-sync sandbox")
        self.ca_file = ca_file
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._port: int | None = None

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> SandboxServer:
        self.ca_file.parent.mkdir(parents=True, exist_ok=True)
        self._ca.cert_pem.write_to_path(str(self.ca_file))
        self._thread = threading.Thread(target=self._serve, name="achieveit-sandbox", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout=30):
            raise RuntimeError("the AchieveIt sandbox did not start within 30 seconds")
        if self._startup_error is not None:
            raise RuntimeError("the AchieveIt sandbox failed to start") from self._startup_error
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=30)
        self._thread = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._port is None:
            raise RuntimeError("the sandbox is not running")
        return f"https://{self._host}:{self._port}"

    @property
    def api_key(self) -> str:
        return self.service_account.api_key

    @property
    def plan_ids(self) -> list[str]:
        return self._rules.plan_ids()

    def connection_info(self) -> dict[str, Any]:
        """What a script needs to use the sandbox (printed by ``achieveit-sync sandbox``)."""
        return {
            "base_url": self.base_url,
            "ca_file": str(self.ca_file),
            "api_key": self.api_key,
            "plan_ids": self.plan_ids,
        }

    # -- inspection and control for tests ------------------------------------------------

    def stored_updates(self, external_id: str | None = None) -> list[StoredUpdate]:
        """Every update stored, in the order applied (optionally for one external ID)."""
        updates = self._rules.stored_updates()
        if external_id is None:
            return updates
        folded = external_id.casefold()
        return [u for u in updates if u.external_id.casefold() == folded]

    def recorded_requests(self) -> list[RecordedRequest]:
        """Every API request seen, in arrival order (inspection calls excluded)."""
        with self._state.lock:
            return list(self._state.requests)

    @property
    def max_concurrent_requests(self) -> int:
        with self._state.lock:
            return self._state.max_in_flight

    def set_faults(self, faults: FaultPlan) -> None:
        with self._state.lock:
            self._state.faults = faults

    def set_behaviour(self, **changes: Any) -> None:
        self._rules.set_behaviour(**changes)

    @contextmanager
    def organisation(self) -> Iterator[Organisation]:
        """Change the organisation (roles, items, API access) while the server runs."""
        with self._rules.organisation() as organisation:
            yield organisation

    # -- serving ------------------------------------------------------------------------

    def _serve(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        runner = web.AppRunner(self._build_app(), access_log=None, handle_signals=False)
        try:
            loop.run_until_complete(runner.setup())
            site = web.TCPSite(
                runner, self._host, self._requested_port, ssl_context=self._ssl_context()
            )
            loop.run_until_complete(site.start())
            self._port = int(runner.addresses[0][1])
        except BaseException as exc:  # noqa: BLE001 - handed to start(), which raises it
            self._startup_error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(runner.cleanup())
            loop.close()

    def _ssl_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version, context.maximum_version = self._tls_versions
        if self._tls_versions[0] < ssl.TLSVersion.TLSv1_2:
            # OpenSSL 3 refuses pre-1.2 protocols at its default security level; a sandbox
            # that must offer them (to prove the client refuses them) lowers it.
            context.set_ciphers("DEFAULT:@SECLEVEL=0")
        self._ca.issue_cert("127.0.0.1", "localhost", "::1").configure_cert(context)
        return context

    def _build_app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024, middlewares=[self._api_middleware])
        app.router.add_get("/exports/plans/{plan_id}", self._export)
        app.router.add_get("/plans/{plan_id}/items", self._export)  # the older docs' path
        app.router.add_post("/api/progressupdates/{name}", self._progress_updates)
        app.router.add_post("/api/metricupdates/{name}", self._metric_updates)
        app.router.add_get("/_sandbox/updates", self._inspect_updates)
        app.router.add_get("/_sandbox/requests", self._inspect_requests)
        app.router.add_get("/_sandbox/stats", self._inspect_stats)
        app.router.add_put("/_sandbox/faults", self._replace_faults)
        return app

    @web.middleware
    async def _api_middleware(
        self,
        request: web.Request,
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        if request.path.startswith("/_sandbox/"):
            return await handler(request)
        state = self._state
        authorization = request.headers.get("Authorization")
        user_id = self._rules.user_id_for(authorization)
        behaviour = self._rules.behaviour
        peer = request.transport.get_extra_info("peername") if request.transport else None
        with state.lock:
            state.request_counter += 1
            number = state.request_counter
            fault = state.faults.choose(number, request.path)
            retry_after = state.faults.retry_after
            slow_seconds = state.faults.slow_seconds
            state.in_flight += 1
            state.max_in_flight = max(state.max_in_flight, state.in_flight)
            record = RecordedRequest(
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
                fault=fault.value if fault else None,
            )
            position = len(state.requests)
            state.requests.append(record)
        request[_REQUEST_NUMBER] = number
        status: int | None = None
        response: web.StreamResponse
        try:
            if behaviour.latency_seconds:
                await asyncio.sleep(behaviour.latency_seconds)
            if fault is Fault.RESET_BEFORE:
                _reset_connection(request)
                return web.Response(status=500)  # never reaches the client
            if fault in (Fault.THROTTLE, Fault.SERVER_ERROR, Fault.BAD_GATEWAY, Fault.UNAVAILABLE):
                response = _fault_response(fault, retry_after)
            else:
                response = await handler(request)
            if fault is Fault.SLOW:
                await asyncio.sleep(slow_seconds)
            if fault is Fault.ECHO_KEY:
                response = _echo_key_response(response.status, authorization or "")
            if fault is Fault.RESET_AFTER:
                _reset_connection(request)
                return web.Response(status=500)  # never reaches the client
            status = response.status
            return response
        finally:
            with state.lock:
                state.in_flight -= 1
                state.requests[position] = replace(
                    record, status=status, finished_at=time.monotonic()
                )

    # -- the API's routes: HTTP in, the rules' answer out --------------------------------

    async def _export(self, request: web.Request) -> web.Response:
        try:
            answer = self._rules.export(
                request.headers.get("Authorization"), request.match_info["plan_id"], request.query
            )
        except ApiFailureError as failure:
            return _failure_response(failure)
        return _answer_response(answer)

    async def _progress_updates(self, request: web.Request) -> web.Response:
        return await self._submit(request, PROGRESS)

    async def _metric_updates(self, request: web.Request) -> web.Response:
        return await self._submit(request, METRIC)

    async def _submit(self, request: web.Request, kind: str) -> web.Response:
        try:
            submitter = self._rules.admit_submission(
                request.headers.get("Authorization"), request.content_length
            )
            body = await request.read()
            answer = self._rules.submit(
                kind,
                request.match_info["name"],
                submitter,
                body,
                request.headers.get("Content-Type", ""),
                request[_REQUEST_NUMBER],
            )
        except ApiFailureError as failure:
            return _failure_response(failure)
        return _answer_response(answer)

    # -- inspection endpoints (for the CLI-run sandbox and the demo) ----------------------

    async def _inspect_updates(self, request: web.Request) -> web.Response:
        return web.json_response([u.as_dict() for u in self.stored_updates()])

    async def _inspect_requests(self, request: web.Request) -> web.Response:
        return web.json_response([r.as_dict() for r in self.recorded_requests()])

    async def _inspect_stats(self, request: web.Request) -> web.Response:
        with self._state.lock:
            stats = {
                "requests": len(self._state.requests),
                "updatesStored": len(self._rules.stored_updates()),
                "maxConcurrentRequests": self._state.max_in_flight,
            }
        return web.json_response(stats)

    async def _replace_faults(self, request: web.Request) -> web.Response:
        try:
            faults = FaultPlan.from_dict(await request.json())
        except (ValueError, TypeError, KeyError) as exc:
            return web.json_response({"message": f"bad fault plan: {exc}"}, status=400)
        self.set_faults(faults)
        return web.json_response({"ok": True})


def _answer_response(answer: Answer) -> web.Response:
    if answer.text_body is not None:
        return web.Response(status=answer.status, text=answer.text_body)
    if answer.json_body is None:
        return web.Response(status=answer.status)
    return web.json_response(answer.json_body, status=answer.status)


def _failure_response(failure: ApiFailureError) -> web.Response:
    return web.json_response({"message": failure.message}, status=failure.status)


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


def _reset_connection(request: web.Request) -> None:
    """Drop the connection with a TCP reset, without sending any answer."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
