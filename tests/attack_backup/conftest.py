"""Attacks on the backup side reuse the integration fixtures (sandbox over HTTPS, clients)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import aws  # noqa: F401
from tests.integration.conftest import client_for, sandbox, start_sandbox  # noqa: F401

from .hostile import HostileServer, Responder


@pytest.fixture
def hostile(tmp_path: Path) -> Iterator[Callable[[Responder], HostileServer]]:
    started: list[HostileServer] = []

    def start(responder: Responder) -> HostileServer:
        server = HostileServer(responder, tmp_path).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
