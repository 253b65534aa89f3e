"""Seeding the sandbox: from a JSON fixture, and generated plans of any size.

Fixture format (every field but ``plans[].id`` and ``items[].sequenceId`` is optional)::

    {
      "organisation": {"name": "Acme Health", "apiAccessEnabled": true},
      "users": [{"id": "svc", "fullName": "API Service Account", "email": "...",
                 "apiKey": "...", "planRoles": {"PLAN-ID": "editor"},
                 "itemRoles": {"ITEM-ID": "viewer"}, "serviceAccount": true}],
      "plans": [{"id": "PLAN-ID", "name": "...", "items": [{"sequenceId": "1.2", ...}]}],
      "generatedPlans": [{"id": "BIG", "name": "...", "items": 100000, "seed": 7}]
    }

A user without ``apiKey`` gets a random one. The user marked ``serviceAccount`` (else the
first) is the one whose key the sandbox prints as ready to use.
"""

from __future__ import annotations

import json
import random
import secrets
import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

from achieveit_sandbox.model import STATUSES, Item, Organisation, Plan, Role, User

EXAMPLE_FIXTURE = "example-organisation.json"

_PEOPLE = (
    ("Maria Lopez", "maria.lopez@example.org"),
    ("James Okafor", "james.okafor@example.org"),
    ("Priya Natarajan", "priya.natarajan@example.org"),
    ("Tom Becker", "tom.becker@example.org"),
    ("Aisha Rahman", "aisha.rahman@example.org"),
    ("Chen Wei", "chen.wei@example.org"),
)
_THEMES = (
    "Grow revenue",
    "Delight patients",
    "Develop our people",
    "Operate efficiently",
    "Strengthen the community",
    "Modernise technology",
)
_VERBS = ("Increase", "Reduce", "Launch", "Improve", "Expand", "Streamline", "Train", "Audit")
_OBJECTS = (
    "member retention",
    "wait times",
    "digital onboarding",
    "staff engagement",
    "net promoter score",
    "energy use",
    "referral volume",
    "first-call resolution",
)


def load_fixture(source: Path | Mapping[str, Any]) -> tuple[Organisation, User]:
    """The organisation a fixture describes, and its service-account user."""
    document = json.loads(source.read_text("utf-8")) if isinstance(source, Path) else source
    org_doc = document.get("organisation", {})
    organisation = Organisation(
        name=org_doc.get("name", "Sandbox Organisation"),
        api_access_enabled=bool(org_doc.get("apiAccessEnabled", True)),
    )
    for plan_doc in document.get("plans", []):
        organisation.add_plan(_plan_from_fixture(plan_doc))
    for generated in document.get("generatedPlans", []):
        organisation.add_plan(
            generate_plan(
                generated["id"],
                int(generated["items"]),
                name=generated.get("name", f"Generated plan {generated['id']}"),
                seed=int(generated.get("seed", 0)),
                external_id_prefix=generated.get("externalIdPrefix"),
            )
        )
    service_account: User | None = None
    for user_doc in document.get("users", []):
        user = _user_from_fixture(user_doc)
        organisation.users.append(user)
        if user_doc.get("serviceAccount") and service_account is None:
            service_account = user
    if not organisation.users:
        organisation.users.append(service_account_for(organisation))
    return organisation, service_account or organisation.users[0]


def load_example_organisation() -> tuple[Organisation, User]:
    """The small, realistic organisation shipped with the sandbox (two plans, a few dozen
    items with external IDs and metrics, a service account with the right roles)."""
    text = (
        resources.files("achieveit_sandbox")
        .joinpath("fixtures", EXAMPLE_FIXTURE)
        .read_text("utf-8")
    )
    return load_fixture(json.loads(text))


def service_account_for(organisation: Organisation, api_key: str | None = None) -> User:
    """A user who may edit every plan of ``organisation``."""
    return User(
        id="api-service-account",
        full_name="API Service Account",
        email="api@example.org",
        api_key=api_key or new_api_key(),
        plan_roles=dict.fromkeys(organisation.plans, Role.EDITOR),
    )


def new_api_key() -> str:
    return secrets.token_urlsafe(32)


def generate_plan(
    plan_id: str,
    item_count: int,
    *,
    name: str | None = None,
    seed: int = 0,
    external_id_prefix: str | None = None,
) -> Plan:
    """A plan of ``item_count`` items shaped like a real strategy plan.

    Every group of 111 items is one objective (level 1) with ten strategies (level 2) of
    ten actions each (level 3); items are created in outline order. About 60% of levels 2
    and 3 track a metric. The same arguments always give the same plan.
    """
    rng = random.Random(seed)
    prefix = external_id_prefix or f"{plan_id}-"
    plan = Plan(id=plan_id, name=name or f"Generated plan {plan_id}")
    epoch = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    for index in range(item_count):
        sequence_id = _outline_number(index)
        level = sequence_id.count(".") + 1
        person, email = _PEOPLE[rng.randrange(len(_PEOPLE))]
        has_metric = level > 1 and rng.random() < 0.6
        start = date(2026, 1, 1) + timedelta(days=rng.randrange(0, 90))
        target = float(rng.randrange(50, 500)) if has_metric else None
        plan.items.append(
            Item(
                id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                plan_id=plan_id,
                sequence_id=sequence_id,
                name=_item_name(level, rng),
                external_id=f"{prefix}{index + 1:06d}",
                description=f"Outline item {sequence_id} of {plan.name}.",
                status=STATUSES[rng.randrange(len(STATUSES))] if level > 1 else "On Track",
                has_metric=has_metric,
                current_value=round(target * rng.uniform(0.1, 0.9), 2) if target else None,
                target=target,
                baseline=0.0 if has_metric else None,
                start=start,
                due=start + timedelta(days=rng.randrange(30, 365)),
                assigned_to_full_name=person,
                assigned_to_email=email,
                assigned_by_full_name=_PEOPLE[0][0],
                members=[person],
                created=epoch,
                last_updated=epoch + timedelta(minutes=index),
            )
        )
    return plan


def _outline_number(index: int) -> str:
    objective, position = divmod(index, 111)
    if position == 0:
        return f"{objective + 1}"
    strategy, action = divmod(position - 1, 11)
    if action == 0:
        return f"{objective + 1}.{strategy + 1}"
    return f"{objective + 1}.{strategy + 1}.{action}"


def _item_name(level: int, rng: random.Random) -> str:
    if level == 1:
        return _THEMES[rng.randrange(len(_THEMES))]
    return f"{_VERBS[rng.randrange(len(_VERBS))]} {_OBJECTS[rng.randrange(len(_OBJECTS))]}"


def _plan_from_fixture(document: Mapping[str, Any]) -> Plan:
    plan_id = str(document["id"])
    plan = Plan(id=plan_id, name=document.get("name", plan_id))
    for item_doc in document.get("items", []):
        plan.items.append(_item_from_fixture(plan_id, item_doc))
    return plan


def _item_from_fixture(plan_id: str, document: Mapping[str, Any]) -> Item:
    status = document.get("status", "Not Started")
    if status not in STATUSES:
        raise ValueError(f"fixture item {document.get('sequenceId')}: unknown status '{status}'")
    return Item(
        id=str(document.get("id") or uuid.uuid4()),
        plan_id=plan_id,
        sequence_id=str(document["sequenceId"]),
        name=document.get("name", ""),
        external_id=document.get("externalId"),
        description=document.get("description", ""),
        status=status,
        has_metric=bool(document.get("hasMetric", False)),
        current_value=document.get("currentValue"),
        target=document.get("target"),
        baseline=document.get("baseline"),
        start=_optional_date(document.get("start")),
        due=_optional_date(document.get("due")),
        assigned_to_full_name=document.get("assignedToFullName"),
        assigned_to_email=document.get("assignedToEmailAddress"),
        assigned_by_full_name=document.get("assignedByFullName"),
        members=list(document.get("members", [])),
    )


def _user_from_fixture(document: Mapping[str, Any]) -> User:
    return User(
        id=str(document.get("id") or uuid.uuid4()),
        full_name=document.get("fullName", "Sandbox User"),
        email=document.get("email", "user@example.org"),
        api_key=document.get("apiKey") or new_api_key(),
        plan_roles={p: Role.parse(r) for p, r in document.get("planRoles", {}).items()},
        item_roles={i: Role.parse(r) for i, r in document.get("itemRoles", {}).items()},
    )


def _optional_date(value: object) -> date | None:
    return date.fromisoformat(str(value)) if value else None
