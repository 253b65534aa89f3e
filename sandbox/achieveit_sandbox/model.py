"""The sandbox's model of one AchieveIt organisation: users, roles, plans, items, updates.

It follows the public facts (``../shared/reference/achieveit-api-facts.md``): a key belongs
to one user; a request succeeds only when that user could do the same thing in the web app.
Roles are per user and plan (admin, editor, viewer, none), optionally overridden per item.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import IntEnum
from typing import Any


class Role(IntEnum):
    """Ordered so that ``role >= Role.EDITOR`` reads as 'may edit'."""

    NONE = 0
    VIEWER = 1
    EDITOR = 2
    ADMIN = 3

    @classmethod
    def parse(cls, text: str) -> Role:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            raise ValueError(f"unknown role '{text}' (admin, editor, viewer, none)") from None


STATUSES = (
    "On Track",
    "Off Track",
    "At Risk",
    "Achieved",
    "Not Achieved",
    "Canceled",
    "Not Started",
)


@dataclass
class User:
    id: str
    full_name: str
    email: str
    api_key: str
    plan_roles: dict[str, Role] = field(default_factory=dict)
    item_roles: dict[str, Role] = field(default_factory=dict)
    """Per item id: overrides the plan role for that item (e.g. an editor locked out)."""

    def role_on_plan(self, plan_id: str) -> Role:
        return self.plan_roles.get(plan_id, Role.NONE)

    def role_on_item(self, item: Item) -> Role:
        return self.item_roles.get(item.id, self.role_on_plan(item.plan_id))


@dataclass(frozen=True)
class StoredUpdate:
    """One update the sandbox applied, as it would appear in an item's history."""

    sequence: int
    kind: str  # "progress" or "metric"
    plan_id: str
    item_id: str
    external_id: str
    status: str | None
    metric_value: float | None
    as_of_date: date
    comment: str | None
    user_id: str
    request_number: int
    request_name: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "sequence": self.sequence,
            "kind": self.kind,
            "planId": self.plan_id,
            "itemId": self.item_id,
            "externalId": self.external_id,
            "status": self.status,
            "metricValue": self.metric_value,
            "asOfDate": self.as_of_date.isoformat(),
            "comment": self.comment,
            "userId": self.user_id,
            "requestNumber": self.request_number,
            "requestName": self.request_name,
        }


@dataclass
class Item:
    id: str
    plan_id: str
    sequence_id: str
    name: str
    external_id: str | None = None
    description: str = ""
    status: str = "Not Started"
    has_metric: bool = False
    current_value: float | None = None
    target: float | None = None
    baseline: float | None = None
    start: date | None = None
    due: date | None = None
    assigned_to_full_name: str | None = None
    assigned_to_email: str | None = None
    assigned_by_full_name: str | None = None
    members: list[str] = field(default_factory=list)
    created: datetime = field(default_factory=lambda: datetime(2026, 1, 5, 9, 0, tzinfo=UTC))
    last_updated: datetime = field(default_factory=lambda: datetime(2026, 1, 5, 9, 0, tzinfo=UTC))
    history: list[StoredUpdate] = field(default_factory=list)

    @property
    def level(self) -> int:
        return self.sequence_id.count(".") + 1

    @property
    def sequence_key(self) -> tuple[int, ...]:
        """``1.10`` after ``1.9``: outline numbers compare part by part, as numbers."""
        return tuple(int(part) for part in self.sequence_id.split("."))

    def as_export(self) -> dict[str, Any]:
        """The item as the export endpoint returns it (the current value of every field)."""
        return {
            "id": self.id,
            "externalId": self.external_id,
            "sequenceId": self.sequence_id,
            "level": self.level,
            "name": self.name,
            "description": self.description,
            "statusName": self.status,
            "hasMetric": self.has_metric,
            "currentValue": self.current_value,
            "target": self.target,
            "baseline": self.baseline,
            "start": self.start.isoformat() if self.start else None,
            "due": self.due.isoformat() if self.due else None,
            "assignedToFullName": self.assigned_to_full_name,
            "assignedToEmailAddress": self.assigned_to_email,
            "assignedByFullName": self.assigned_by_full_name,
            "members": list(self.members),
            "created": _iso_instant(self.created),
            "lastUpdated": _iso_instant(self.last_updated),
            "updates": len(self.history),
        }


@dataclass
class Plan:
    id: str
    name: str
    items: list[Item] = field(default_factory=list)


@dataclass
class Organisation:
    name: str = "Sandbox Organisation"
    api_access_enabled: bool = True
    users: list[User] = field(default_factory=list)
    plans: dict[str, Plan] = field(default_factory=dict)
    _items_by_external_id: dict[str, Item] = field(default_factory=dict, repr=False)

    def add_plan(self, plan: Plan) -> None:
        if plan.id in self.plans:
            raise ValueError(f"duplicate plan id '{plan.id}'")
        self.plans[plan.id] = plan
        for item in plan.items:
            self._index(item)

    def add_item(self, plan_id: str, item: Item) -> None:
        self.plans[plan_id].items.append(item)
        self._index(item)

    def remove_item(self, plan_id: str, item_id: str) -> Item:
        plan = self.plans[plan_id]
        for position, item in enumerate(plan.items):
            if item.id == item_id:
                del plan.items[position]
                if item.external_id:
                    self._items_by_external_id.pop(item.external_id.casefold(), None)
                return item
        raise KeyError(item_id)

    def _index(self, item: Item) -> None:
        if item.external_id:
            folded = item.external_id.casefold()
            if folded in self._items_by_external_id:
                raise ValueError(f"duplicate external id '{item.external_id}'")
            self._items_by_external_id[folded] = item

    def item_by_external_id(self, external_id: str) -> Item | None:
        return self._items_by_external_id.get(external_id.casefold())

    def user_by_key(self, api_key: str) -> User | None:
        for user in self.users:
            if user.api_key == api_key:
                return user
        return None


def new_id() -> str:
    return str(uuid.uuid4())


def _iso_instant(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
