"""The AchieveIt sandbox: a local HTTPS server (aiohttp) that behaves like the documented API.

Run it in-process (``SandboxServer(...).start()``, as the pytest fixture does) or from the
shell (``achieveit-sync sandbox``). It serves HTTPS only, TLS 1.2 at least, with a
certificate from a throw-away trustme CA written where the caller asks.

This module starts and stops the server and wires it together; each job lives in its own:

* ``rules``: the API's rules, and the documented choices where AchieveIt's behaviour is
  unknown (see its docstring);
* ``recording``: the outermost middleware, which numbers and records every API request;
* ``faults``: the middleware inside it, which answers the requests a ``FaultPlan`` picks
  badly;
* ``inspection``: the ``/_sandbox/*`` routes.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import trustme
from aiohttp import web

from achieveit_sandbox.faults import FaultInjection, FaultPlan
from achieveit_sandbox.inspection import add_inspection_routes
from achieveit_sandbox.model import Organisation, StoredUpdate, User
from achieveit_sandbox.recording import REQUEST_NUMBER, RecordedRequest, RequestRecorder
from achieveit_sandbox.rules import Answer, ApiFailureError, ApiRules, SandboxBehaviour
from achieveit_sandbox.submissions import METRIC, PROGRESS


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
        self._recorder = RequestRecorder(user_id_for=self._rules.user_id_for)
        self._faults = FaultInjection(
            faults or FaultPlan(),
            self._recorder,
            latency_seconds=lambda: self._rules.behaviour.latency_seconds,
        )
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
        return self._recorder.recorded_requests()

    @property
    def max_concurrent_requests(self) -> int:
        return self._recorder.max_concurrent_requests

    def set_faults(self, faults: FaultPlan) -> None:
        self._faults.set_plan(faults)

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
        # Recording outermost, so that a faulted request is still recorded with its fault.
        app = web.Application(
            client_max_size=64 * 1024 * 1024,
            middlewares=[self._recorder.middleware, self._faults.middleware],
        )
        app.router.add_get("/exports/plans/{plan_id}", self._export)
        app.router.add_get("/plans/{plan_id}/items", self._export)  # the older docs' path
        app.router.add_post("/api/progressupdates/{name}", self._progress_updates)
        app.router.add_post("/api/metricupdates/{name}", self._metric_updates)
        add_inspection_routes(app.router, self)
        return app

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
                request[REQUEST_NUMBER],
            )
        except ApiFailureError as failure:
            return _failure_response(failure)
        return _answer_response(answer)


def _answer_response(answer: Answer) -> web.Response:
    if answer.text_body is not None:
        return web.Response(status=answer.status, text=answer.text_body)
    if answer.json_body is None:
        return web.Response(status=answer.status)
    return web.json_response(answer.json_body, status=answer.status)


def _failure_response(failure: ApiFailureError) -> web.Response:
    return web.json_response({"message": failure.message}, status=failure.status)
