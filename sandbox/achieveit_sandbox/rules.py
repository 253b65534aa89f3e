"""The API's rules as plain code: who may do what, how exports page and sort, and how a
submission is checked and applied. No HTTP here: the server hands in the Authorization
header, the plan id, query values, body bytes and content type, and gets back an ``Answer``
or an ``ApiFailureError``.

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

import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from achieveit_sandbox.model import Item, Organisation, Role, StoredUpdate, User, new_id
from achieveit_sandbox.submissions import METRIC, SubmissionError, SubmittedRow, parse_submission

MAX_TAKE = 1500
DEFAULT_TAKE = 100
_AUTH_SCHEME = "API-KEY"
_INVALID_ROWS = "The import contains invalid rows"

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
class Answer:
    """What the API answers when it accepts a request."""

    status: int
    json_body: Any = None
    """The JSON-able body; with ``text_body`` also ``None``, the answer has no body."""
    text_body: str | None = None
    """A plain-text body instead of JSON (a misbehaviour some servers have)."""


class ApiFailureError(Exception):
    """The API refuses the request: ``status`` and the ``{"message"}`` it answers with."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message
        super().__init__(message)


@dataclass(frozen=True)
class _Paging:
    skip: int
    take: int
    sort_key: str
    descending: bool


class ApiRules:
    """One organisation's state and the rules every API request is held to.

    Thread-safe: the server calls in from its event loop while a test changes the
    organisation or the behaviour from its own thread.
    """

    def __init__(
        self, organisation: Organisation, behaviour: SandboxBehaviour | None = None
    ) -> None:
        self._organisation = organisation
        self._behaviour = behaviour or SandboxBehaviour()
        self._lock = threading.Lock()
        self._updates: list[StoredUpdate] = []
        # Sorting a big plan for every page would dominate an export, so sorted orders are
        # kept until the plan changes (its version is part of the key).
        self._plan_versions: dict[str, int] = {}
        self._sort_cache: dict[tuple[str, str, bool, int], list[Item]] = {}

    # -- state, for the server and tests ------------------------------------------------

    @property
    def behaviour(self) -> SandboxBehaviour:
        with self._lock:
            return self._behaviour

    def set_behaviour(self, **changes: Any) -> None:
        with self._lock:
            self._behaviour = replace(self._behaviour, **changes)

    @contextmanager
    def organisation(self) -> Iterator[Organisation]:
        """Change the organisation (roles, items, API access) while requests are served."""
        with self._lock:
            yield self._organisation
            for plan_id in self._organisation.plans:
                self._plan_changed(plan_id)

    def plan_ids(self) -> list[str]:
        with self._lock:
            return list(self._organisation.plans)

    def stored_updates(self) -> list[StoredUpdate]:
        """Every update stored, in the order applied."""
        with self._lock:
            return list(self._updates)

    def user_id_for(self, authorization: str | None) -> str | None:
        """Whose key the header carries, if anyone's (for the request log; judges nothing)."""
        if not authorization or not authorization.startswith(f"{_AUTH_SCHEME} "):
            return None
        with self._lock:
            user = self._organisation.user_by_key(authorization[len(_AUTH_SCHEME) + 1 :])
        return user.id if user else None

    # -- export -------------------------------------------------------------------------

    def export(self, authorization: str | None, plan_id: str, query: Mapping[str, str]) -> Answer:
        """One page of a plan's items, as ``GET /exports/plans/{plan_id}`` answers it."""
        with self._lock:
            user = self._authorise(authorization)
            behaviour = self._behaviour
            if plan_id not in self._organisation.plans:
                raise ApiFailureError(404, f"Plan '{plan_id}' was not found")
            if user.role_on_plan(plan_id) < Role.VIEWER:
                raise ApiFailureError(403, f"You do not have access to plan '{plan_id}'")
            paging = _paging(query)
            ordered = self._sorted_items(plan_id, paging.sort_key, paging.descending)
            start = 0 if behaviour.ignore_skip else paging.skip
            page = [item.as_export() for item in ordered[start : start + paging.take]]
        body: dict[str, Any] = {"items": page}
        if not behaviour.omit_total_count:
            body["totalCount"] = len(ordered)
        return Answer(200, body)

    def _sorted_items(self, plan_id: str, sort_key: str, descending: bool) -> list[Item]:
        cache_key = (plan_id, sort_key, descending, self._plan_versions.get(plan_id, 0))
        cached = self._sort_cache.get(cache_key)
        if cached is None:
            value_of = _SORT_KEYS[sort_key]

            def order(item: Item) -> tuple[Any, ...]:
                # Missing values sort first (last when descending); ties by outline number.
                value = value_of(item)
                return (value is not None, value if value is not None else 0, item.sequence_key)

            items = self._organisation.plans[plan_id].items
            cached = sorted(items, key=order, reverse=descending)
            self._sort_cache[cache_key] = cached
        return cached

    # -- submissions --------------------------------------------------------------------

    def admit_submission(self, authorization: str | None, declared_bytes: int | None) -> User:
        """The submitting user, or 401/403 by the key and 413 by the declared length: all
        decided before the body is read."""
        with self._lock:
            user = self._authorise(authorization)
            limit = self._behaviour.max_body_bytes
        if (declared_bytes or 0) > limit:
            raise ApiFailureError(413, f"The body exceeds {limit} bytes")
        return user

    def submit(
        self,
        kind: str,
        name: str,
        submitter: User,
        body: bytes,
        content_type: str,
        request_number: int,
    ) -> Answer:
        """Check every row, then apply them all, or refuse the whole request.

        ``submitter`` comes from ``admit_submission``; ``request_number`` is stored with
        each update so a test can tell which request applied it.
        """
        behaviour = self.behaviour
        if len(body) > behaviour.max_body_bytes:
            raise ApiFailureError(413, f"The body exceeds {behaviour.max_body_bytes} bytes")
        try:
            rows = parse_submission(kind, body, content_type, name)
        except SubmissionError as exc:
            raise _row_failure(400, str(exc), _INVALID_ROWS, behaviour) from None
        if len(rows) > behaviour.max_rows_per_request:
            raise ApiFailureError(413, f"At most {behaviour.max_rows_per_request} rows per request")
        with self._lock:
            resolved = [self._resolve(row, kind, submitter, behaviour) for row in rows]
            self._apply(resolved, kind, submitter, name, request_number)
        if behaviour.submit_body == "empty":
            return Answer(behaviour.submit_status)
        if behaviour.submit_body == "text":
            return Answer(behaviour.submit_status, text_body="Import queued")
        receipt = {"importId": new_id(), "name": name, "rowsReceived": len(rows)}
        return Answer(behaviour.submit_status, receipt)

    def _resolve(
        self, row: SubmittedRow, kind: str, user: User, behaviour: SandboxBehaviour
    ) -> tuple[SubmittedRow, Item]:
        """The item a row updates, or the failure that refuses the whole request."""
        item = self._organisation.item_by_external_id(row.external_id)
        if item is None:
            raise _row_failure(
                400,
                f"Row {row.row}: unknown external ID '{row.external_id}'",
                _INVALID_ROWS,
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
                _INVALID_ROWS,
                behaviour,
            )
        if kind == METRIC and not item.has_metric:
            raise _row_failure(
                400,
                f"Row {row.row}: item '{row.external_id}' has no metric",
                _INVALID_ROWS,
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
                sequence=len(self._updates) + 1,
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
            self._updates.append(stored)
            item.history.append(stored)
            if row.status is not None:
                item.status = row.status
            if stored.metric_value is not None:
                item.current_value = stored.metric_value
            item.last_updated = now
            self._plan_changed(item.plan_id)

    # -- shared -------------------------------------------------------------------------

    def _authorise(self, authorization: str | None) -> User:
        """The key's user, or 401/403 exactly as the documented rules say."""
        if not authorization or not authorization.startswith(f"{_AUTH_SCHEME} "):
            raise ApiFailureError(
                401, "Missing or malformed Authorization header; send 'API-KEY <your key>'"
            )
        user = self._organisation.user_by_key(authorization[len(_AUTH_SCHEME) + 1 :])
        if user is None:
            raise ApiFailureError(401, "The API key is not valid")
        if not self._organisation.api_access_enabled:
            raise ApiFailureError(403, "API access is not enabled for this organization")
        return user

    def _plan_changed(self, plan_id: str) -> None:
        self._plan_versions[plan_id] = self._plan_versions.get(plan_id, 0) + 1
        self._sort_cache.clear()


def _paging(query: Mapping[str, str]) -> _Paging:
    try:
        skip = int(query.get("skip", "0"))
        take = int(query.get("take", str(DEFAULT_TAKE)))
    except ValueError:
        raise ApiFailureError(400, "skip and take must be whole numbers") from None
    if skip < 0 or take < 1:
        raise ApiFailureError(400, "skip must be 0 or more and take 1 or more")
    sort_key = query.get("sortKey", "sequenceId")
    if sort_key not in _SORT_KEYS:
        raise ApiFailureError(400, f"Unknown sortKey '{sort_key}'")
    direction = query.get("sortDirection", "asc").lower()
    if direction not in ("asc", "desc"):
        raise ApiFailureError(400, "sortDirection must be 'asc' or 'desc'")
    return _Paging(skip, min(take, MAX_TAKE), sort_key, direction == "desc")


def _row_failure(
    status: int, detailed: str, generic: str, behaviour: SandboxBehaviour
) -> ApiFailureError:
    return ApiFailureError(status, detailed if behaviour.name_rows_in_errors else generic)
