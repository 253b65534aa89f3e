"""The AchieveIt sandbox: a local HTTPS server (aiohttp) that behaves like the documented API.

Run it in-process (``SandboxServer(...).start()``, as the pytest fixture does) or from the
shell (``achieveit-sync sandbox``). It serves HTTPS only, TLS 1.2 at least, with a
certificate from a throw-away trustme CA written where the caller asks.

Documented choices where AchieveIt's behaviour is unknown (the client must not depend on
any of them; see ``SandboxBehaviour`` to change them):

* A submission is all-or-nothing: the first invalid row refuses the whole request with 400
  (403 when the user may not edit one of the items); the message names the row unless
  ``name_rows_in_errors`` is off. Nothing is stored from a refused request.
* An accepted submission answers ``202`` with ``{"importId", "name", "rowsReceived"}``.
* Posting the same update twice stores it twice (as a person clicking twice would).
* At most ``max_rows_per_request`` rows (5,000) and ``max_body_bytes`` (10 MB) per request;
  beyond that, 413.
* ``take`` above 1,500 is silently clamped to 1,500 (so a client trusting short pages while
  asking for more than the maximum would stop early); ``take`` below 1 is a 400.
* Unknown sort keys and directions are a 400; ties sort by outline number.
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
from achieveit_sandbox.model import Item, Organisation, Role, StoredUpdate, User, new_id
from achieveit_sandbox.submissions import (
    METRIC,
    PROGRESS,
    SubmissionError,
    SubmittedRow,
    parse_submission,
)

_REQUEST_NUMBER = web.RequestKey("sandbox_request_number", int)

MAX_TAKE = 1500
DEFAULT_TAKE = 100
_AUTH_SCHEME = "API-KEY"

_SORT_KEYS: dict[str, Callable[[Item], Any]] = {
    "sequenceId": lambda item: item.sequence_key,
    "name": lambda item: item.name.casefold(),
    "level": lambda item: item.level,
    "status": lambda item: item.status,
    "start": lambda item: item.start,
    "due": lambda item: item.due,
    "currentValue": lambda item: item.current_value,
    "lastUpdated": lambda item: item.last_updated,
    "assignedToFullName": lambda item: item.assigned_to_full_name,
    "assignedToEmailAddress": lambda item: item.assigned_to_email,
    "assignedByFullName": lambda item: item.assigned_by_full_name,
    "updates": lambda item: len(item.history),
    "alignsTo": lambda item: "",
    "dependentOn": lambda item: "",
    "baseline": lambda item: item.baseline,
    "target": lambda item: item.target,
    "created": lambda item: item.created,
    "description": lambda item: item.description.casefold(),
}


@dataclass(frozen=True)
class SandboxBehaviour:
    """The sandbox's choices where the real API is undocumented, and misbehaviours to test
    a client against."""

    name_rows_in_errors: bool = True
    submit_status: int = 202
    submit_body: str = "json"
    """``json`` (an import receipt), ``empty`` or ``text``."""
    max_rows_per_request: int = 5000
    max_body_bytes: int = 10 * 1024 * 1024
    latency_seconds: float = 0.0
    """Time every API request takes, so that concurrency is observable."""
    ignore_skip: bool = False
    """Misbehave: always answer from the first item (a server that never stops)."""
    omit_total_count: bool = False
    """Misbehave: leave ``totalCount`` out of export answers."""


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


class _ApiFailureError(Exception):
    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message
        super().__init__(message)


@dataclass
class _State:
    organisation: Organisation
    behaviour: SandboxBehaviour
    faults: FaultPlan
    lock: threading.Lock = field(default_factory=threading.Lock)
    updates: list[StoredUpdate] = field(default_factory=list)
    requests: list[RecordedRequest] = field(default_factory=list)
    request_counter: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    plan_versions: dict[str, int] = field(default_factory=dict)
    sort_cache: dict[tuple[str, str, bool, int], list[Item]] = field(default_factory=dict)


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
        self._state = _State(organisation, behaviour or SandboxBehaviour(), faults or FaultPlan())
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
        with self._state.lock:
            return list(self._state.organisation.plans)

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
        with self._state.lock:
            updates = list(self._state.updates)
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
        with self._state.lock:
            self._state.behaviour = replace(self._state.behaviour, **changes)

    @contextmanager
    def organisation(self) -> Iterator[Organisation]:
        """Change the organisation (roles, items, API access) while the server runs."""
        with self._state.lock:
            yield self._state.organisation
            for plan_id in self._state.organisation.plans:
                self._bump_plan(plan_id)

    def _bump_plan(self, plan_id: str) -> None:
        self._state.plan_versions[plan_id] = self._state.plan_versions.get(plan_id, 0) + 1
        self._state.sort_cache.clear()

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
        peer = request.transport.get_extra_info("peername") if request.transport else None
        with state.lock:
            state.request_counter += 1
            number = state.request_counter
            fault = state.faults.choose(number, request.path)
            behaviour = state.behaviour
            retry_after = state.faults.retry_after
            slow_seconds = state.faults.slow_seconds
            user = self._user_for(authorization)
            state.in_flight += 1
            state.max_in_flight = max(state.max_in_flight, state.in_flight)
            record = RecordedRequest(
                number=number,
                method=request.method,
                path=request.path,
                query=dict(request.query),
                authorization_scheme=authorization.split(" ", 1)[0] if authorization else None,
                user_id=user.id if user else None,
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

    def _user_for(self, authorization: str | None) -> User | None:
        if not authorization or not authorization.startswith(f"{_AUTH_SCHEME} "):
            return None
        return self._state.organisation.user_by_key(authorization[len(_AUTH_SCHEME) + 1 :])

    def _authorise(self, request: web.Request) -> User:
        """The key's user, or 401/403 exactly as the documented rules say."""
        authorization = request.headers.get("Authorization", "")
        if not authorization.startswith(f"{_AUTH_SCHEME} "):
            raise _ApiFailureError(
                401, "Missing or malformed Authorization header; send 'API-KEY <your key>'"
            )
        user = self._state.organisation.user_by_key(authorization[len(_AUTH_SCHEME) + 1 :])
        if user is None:
            raise _ApiFailureError(401, "The API key is not valid")
        if not self._state.organisation.api_access_enabled:
            raise _ApiFailureError(403, "API access is not enabled for this organization")
        return user

    # -- the API ------------------------------------------------------------------------

    async def _export(self, request: web.Request) -> web.Response:
        plan_id = request.match_info["plan_id"]
        try:
            with self._state.lock:
                user = self._authorise(request)
                behaviour = self._state.behaviour
                plan = self._state.organisation.plans.get(plan_id)
                if plan is None:
                    raise _ApiFailureError(404, f"Plan '{plan_id}' was not found")
                if user.role_on_plan(plan_id) < Role.VIEWER:
                    raise _ApiFailureError(403, f"You do not have access to plan '{plan_id}'")
                skip, take, sort_key, descending = _paging(request)
                ordered = self._sorted_items(plan_id, sort_key, descending)
                start = 0 if behaviour.ignore_skip else skip
                page = [item.as_export() for item in ordered[start : start + take]]
                total = len(ordered)
        except _ApiFailureError as failure:
            return _error_response(failure)
        body: dict[str, Any] = {"items": page}
        if not behaviour.omit_total_count:
            body["totalCount"] = total
        return web.json_response(body)

    def _sorted_items(self, plan_id: str, sort_key: str, descending: bool) -> list[Item]:
        version = self._state.plan_versions.get(plan_id, 0)
        cache_key = (plan_id, sort_key, descending, version)
        cached = self._state.sort_cache.get(cache_key)
        if cached is None:
            value_of = _SORT_KEYS[sort_key]

            def order(item: Item) -> tuple[Any, ...]:
                value = value_of(item)
                return (value is not None, value if value is not None else 0, item.sequence_key)

            cached = sorted(
                self._state.organisation.plans[plan_id].items, key=order, reverse=descending
            )
            self._state.sort_cache[cache_key] = cached
        return cached

    async def _progress_updates(self, request: web.Request) -> web.Response:
        return await self._submit(request, PROGRESS)

    async def _metric_updates(self, request: web.Request) -> web.Response:
        return await self._submit(request, METRIC)

    async def _submit(self, request: web.Request, kind: str) -> web.Response:
        name = request.match_info["name"]
        behaviour = self._state.behaviour
        try:
            with self._state.lock:
                user = self._authorise(request)
            if (request.content_length or 0) > behaviour.max_body_bytes:
                raise _ApiFailureError(413, f"The body exceeds {behaviour.max_body_bytes} bytes")
            body = await request.read()
            if len(body) > behaviour.max_body_bytes:
                raise _ApiFailureError(413, f"The body exceeds {behaviour.max_body_bytes} bytes")
            try:
                rows = parse_submission(kind, body, request.headers.get("Content-Type", ""), name)
            except SubmissionError as exc:
                raise _row_failure(
                    400, str(exc), "The import contains invalid rows", behaviour
                ) from None
            if len(rows) > behaviour.max_rows_per_request:
                raise _ApiFailureError(
                    413, f"At most {behaviour.max_rows_per_request} rows per request"
                )
            with self._state.lock:
                number = request[_REQUEST_NUMBER]
                resolved = [self._resolve(row, kind, user, behaviour) for row in rows]
                self._apply(resolved, kind, user, name, number)
        except _ApiFailureError as failure:
            return _error_response(failure)
        if behaviour.submit_body == "empty":
            return web.Response(status=behaviour.submit_status)
        if behaviour.submit_body == "text":
            return web.Response(status=behaviour.submit_status, text="Import queued")
        return web.json_response(
            {"importId": new_id(), "name": name, "rowsReceived": len(rows)},
            status=behaviour.submit_status,
        )

    def _resolve(
        self, row: SubmittedRow, kind: str, user: User, behaviour: SandboxBehaviour
    ) -> tuple[SubmittedRow, Item]:
        item = self._state.organisation.item_by_external_id(row.external_id)
        if item is None:
            raise _row_failure(
                400,
                f"Row {row.row}: unknown external ID '{row.external_id}'",
                "The import contains invalid rows",
                behaviour,
            )
        if user.role_on_item(item) < Role.EDITOR:
            raise _row_failure(
                403,
                f"Row {row.row}: you do not have permission to update item "
                f"'{row.external_id}' ({item.sequence_id}) in plan '{item.plan_id}'",
                "You do not have permission to update one or more items",
                behaviour,
            )
        if item.has_metric and row.metric_value is None:
            raise _row_failure(
                400,
                f"Row {row.row}: item '{row.external_id}' has a metric; a metric value is required",
                "The import contains invalid rows",
                behaviour,
            )
        if kind == METRIC and not item.has_metric:
            raise _row_failure(
                400,
                f"Row {row.row}: item '{row.external_id}' has no metric",
                "The import contains invalid rows",
                behaviour,
            )
        return row, item

    def _apply(
        self,
        resolved: list[tuple[SubmittedRow, Item]],
        kind: str,
        user: User,
        name: str,
        request_number: int,
    ) -> None:
        now = datetime.now(UTC)
        for row, item in resolved:
            stored = StoredUpdate(
                sequence=len(self._state.updates) + 1,
                kind=kind,
                plan_id=item.plan_id,
                item_id=item.id,
                external_id=item.external_id or row.external_id,
                status=row.status,
                metric_value=row.metric_value if item.has_metric else None,
                as_of_date=row.as_of_date,
                comment=row.comment,
                user_id=user.id,
                request_number=request_number,
                request_name=name,
            )
            self._state.updates.append(stored)
            item.history.append(stored)
            if row.status is not None:
                item.status = row.status
            if stored.metric_value is not None:
                item.current_value = stored.metric_value
            item.last_updated = now
            self._bump_plan(item.plan_id)

    # -- inspection endpoints (for the CLI-run sandbox and the demo) ----------------------

    async def _inspect_updates(self, request: web.Request) -> web.Response:
        return web.json_response([u.as_dict() for u in self.stored_updates()])

    async def _inspect_requests(self, request: web.Request) -> web.Response:
        return web.json_response([r.as_dict() for r in self.recorded_requests()])

    async def _inspect_stats(self, request: web.Request) -> web.Response:
        with self._state.lock:
            stats = {
                "requests": len(self._state.requests),
                "updatesStored": len(self._state.updates),
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


def _paging(request: web.Request) -> tuple[int, int, str, bool]:
    query = request.query
    try:
        skip = int(query.get("skip", "0"))
        take = int(query.get("take", str(DEFAULT_TAKE)))
    except ValueError:
        raise _ApiFailureError(400, "skip and take must be whole numbers") from None
    if skip < 0 or take < 1:
        raise _ApiFailureError(400, "skip must be 0 or more and take 1 or more")
    sort_key = query.get("sortKey", "sequenceId")
    if sort_key not in _SORT_KEYS:
        raise _ApiFailureError(400, f"Unknown sortKey '{sort_key}'")
    direction = query.get("sortDirection", "asc").lower()
    if direction not in ("asc", "desc"):
        raise _ApiFailureError(400, "sortDirection must be 'asc' or 'desc'")
    return skip, min(take, MAX_TAKE), sort_key, direction == "desc"


def _row_failure(
    status: int, detailed: str, generic: str, behaviour: SandboxBehaviour
) -> _ApiFailureError:
    return _ApiFailureError(status, detailed if behaviour.name_rows_in_errors else generic)


def _error_response(failure: _ApiFailureError) -> web.Response:
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
