"""Stress suites: bounded in time and count, loopback only; ``STRESS_SCALE=soak`` (``make
soak``) runs them at full size, the default size fits in CI's time."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from achieveit_sandbox import SandboxServer
from hypothesis import settings

from tests.integration.conftest import (  # noqa: F401 - fixtures shared with integration
    SandboxFactory,
    client_for,
    plan_organisation,
    start_sandbox,
)
from tests.integration.ingest_stack import IngestStack

pytestmark = pytest.mark.stress


@dataclass(frozen=True)
class Scale:
    name: str
    files: int
    max_rows: int
    plan_size: int


SCALES = {
    "ci": Scale("ci", files=40, max_rows=5_000, plan_size=20_000),
    "soak": Scale("soak", files=200, max_rows=100_000, plan_size=120_000),
}


# CI explores the same examples every run (a red build must be reproducible); the soak
# explores new ones each time, and more of them.
settings.register_profile("ci", derandomize=True, max_examples=300)
settings.register_profile("soak", max_examples=3000)
settings.load_profile(os.environ.get("STRESS_SCALE", "ci"))


@pytest.fixture(scope="session")
def scale() -> Scale:
    return SCALES[os.environ.get("STRESS_SCALE", "ci")]


@pytest.fixture
def load_sandbox(start_sandbox: SandboxFactory, scale: Scale) -> SandboxServer:  # noqa: F811
    sandbox = start_sandbox(plan_organisation(("LA", scale.plan_size), ("LB", scale.plan_size)))
    # Every request takes a little time, so that overlapping requests are observable.
    sandbox.set_behaviour(latency_seconds=0.002)
    return sandbox


@pytest.fixture
def load_stack(aws: None, load_sandbox: SandboxServer) -> Iterator[IngestStack]:
    yield IngestStack(load_sandbox)
