"""Integration fixtures: the AchieveIt sandbox over real HTTPS on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from achieveit_sandbox import (
    Organisation,
    SandboxServer,
    User,
    generate_plan,
    load_example_organisation,
    service_account_for,
)
from achieveit_sync.api_key import StaticApiKey
from achieveit_sync.client import AchieveItClient
from achieveit_sync.settings import ClientSettings, RetrySettings

from tests.conftest import RECOGNISABLE_KEY

pytestmark = pytest.mark.integration

SandboxFactory = Callable[..., SandboxServer]
ClientFactory = Callable[..., AchieveItClient]


@pytest.fixture
def start_sandbox(tmp_path: Path) -> Iterator[SandboxFactory]:
    """Start a sandbox for an organisation (default: the shipped example organisation with
    the recognisable key); every sandbox started is stopped after the test."""
    started: list[SandboxServer] = []

    def start(
        organisation: Organisation | None = None,
        service_account: User | None = None,
        **options: Any,
    ) -> SandboxServer:
        if organisation is None:
            organisation, service_account = load_example_organisation()
            service_account.api_key = RECOGNISABLE_KEY
        if service_account is None:
            service_account = service_account_for(organisation, RECOGNISABLE_KEY)
            organisation.users.append(service_account)
        server = SandboxServer(
            organisation,
            service_account,
            ca_file=tmp_path / f"ca-{len(started)}.pem",
            **options,
        )
        started.append(server.start())
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def sandbox(start_sandbox: SandboxFactory) -> SandboxServer:
    """The example organisation (two plans, a service account that may edit both)."""
    return start_sandbox()


@pytest.fixture
def client_for() -> Iterator[ClientFactory]:
    """A client configured for a sandbox; retry waits are real but short by default."""
    clients: list[AchieveItClient] = []

    def make(
        server: SandboxServer,
        *,
        api_key: str | None = None,
        max_attempts: int = 4,
        backoff_base: float = 0.01,
        read_timeout: float = 10.0,
        **client_options: Any,
    ) -> AchieveItClient:
        settings = ClientSettings(
            base_url=server.base_url,
            ca_bundle=server.ca_file,
            read_timeout=read_timeout,
            retry=RetrySettings(
                max_attempts=max_attempts, backoff_base=backoff_base, backoff_cap=0.1
            ),
        )
        client = AchieveItClient(
            settings, StaticApiKey(api_key or server.api_key), **client_options
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def client(sandbox: SandboxServer, client_for: ClientFactory) -> AchieveItClient:
    return client_for(sandbox)


def plan_organisation(*plans: tuple[str, int]) -> Organisation:
    """An organisation holding generated plans of the given sizes."""
    organisation = Organisation(name="Generated")
    for seed, (plan_id, size) in enumerate(plans):
        organisation.add_plan(generate_plan(plan_id, size, seed=seed))
    return organisation


@pytest.fixture
def configured(sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch) -> SandboxServer:
    """The sandbox, with the CLI's environment variables pointing at it."""
    monkeypatch.setenv("ACHIEVEIT_BASE_URL", sandbox.base_url)
    monkeypatch.setenv("ACHIEVEIT_API_KEY", sandbox.api_key)
    monkeypatch.setenv("ACHIEVEIT_CA_BUNDLE", str(sandbox.ca_file))
    return sandbox
