"""A local, faithful stand-in for the AchieveIt REST API (development and tests only).

Never deployed: the Lambda layer is ``shared/achieveit_sync``; this package lives beside it
so that tests, the demo and the benchmarks run against something shaped like the real API.
"""

from achieveit_sandbox.faults import Fault, FaultPlan
from achieveit_sandbox.model import Item, Organisation, Plan, Role, StoredUpdate, User
from achieveit_sandbox.recording import RecordedRequest
from achieveit_sandbox.rules import SandboxBehaviour
from achieveit_sandbox.seed import (
    generate_plan,
    load_example_organisation,
    load_fixture,
    service_account_for,
)
from achieveit_sandbox.server import SandboxServer

__all__ = [
    "Fault",
    "FaultPlan",
    "Item",
    "Organisation",
    "Plan",
    "RecordedRequest",
    "Role",
    "SandboxBehaviour",
    "SandboxServer",
    "StoredUpdate",
    "User",
    "generate_plan",
    "load_example_organisation",
    "load_fixture",
    "service_account_for",
]
