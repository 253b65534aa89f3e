"""What a plan id may look like, checked before it becomes a URL segment, an S3 key or a path.

A plan id is 1 to 128 ASCII letters, digits, hyphens, underscores and dots, and starts with a
letter or a digit: AchieveIt's ids (GUIDs such as ``5d9f2c1e-7a3b-4e8f-9c61-2f0a8d4b7e13``)
and short ones (``PX-2027``) pass; ``..``, ``a/b``, ``%2e%2e``, spaces, control and non-ASCII
characters do not. The rule is the template's ``PlanIds`` pattern plus the first character
and a length, so that an id can never climb out of ``backups/<planId>/`` or ``--out DIR``.
"""

from __future__ import annotations

import re

from achieveit_sync.errors import AchieveItSyncError

MAX_PLAN_ID_LENGTH = 128
PLAN_ID_RULE = (
    f"1 to {MAX_PLAN_ID_LENGTH} letters (A-Z, a-z), digits, '-', '_' or '.', "
    "starting with a letter or a digit"
)
_PLAN_ID = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._-]{{0,{MAX_PLAN_ID_LENGTH - 1}}}")
_PREVIEW_CHARS = 60


class InvalidPlanIdError(AchieveItSyncError, ValueError):
    """A plan id outside the accepted characters; the message names it (safely) and the rule."""

    def __init__(self, value: object) -> None:
        self.plan_id = describe_plan_id(value)
        if isinstance(value, str):
            what = f"plan id {self.plan_id} is not valid" if value else "the plan id is empty"
        else:
            what = f"a plan id must be text, not {type(value).__name__} ({self.plan_id})"
        super().__init__(
            f"{what}: use {PLAN_ID_RULE}; copy the id from the plan's options menu in AchieveIt"
        )


def is_plan_id(value: object) -> bool:
    return isinstance(value, str) and _PLAN_ID.fullmatch(value) is not None


def check_plan_id(value: object) -> str:
    """``value`` itself when it is a valid plan id; ``InvalidPlanIdError`` otherwise."""
    if not is_plan_id(value):
        raise InvalidPlanIdError(value)
    assert isinstance(value, str)  # noqa: S101 - is_plan_id checked it
    return value


def describe_plan_id(value: object) -> str:
    """A plan id as it may appear in messages, logs and results: a valid one as it is;
    anything else quoted with every unusual character escaped, and shortened."""
    if is_plan_id(value):
        assert isinstance(value, str)  # noqa: S101 - is_plan_id checked it
        return value
    if isinstance(value, str):
        text = ascii(value[: _PREVIEW_CHARS + 1])
    else:  # a JSON event can send null, a number, a list...
        text = f"<{type(value).__name__}: {value!a}>"
    return text if len(text) <= _PREVIEW_CHARS else text[:_PREVIEW_CHARS] + "..."
