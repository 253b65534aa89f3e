"""How times and errors are written in documents and messages (manifests, ``latest.json``,
outcomes, ``status``): one spelling each, whoever writes them."""

from __future__ import annotations

from datetime import UTC, datetime


def iso_utc(moment: datetime) -> str:
    """``2026-11-28T08:30:00Z``: the instant in UTC, to the second."""
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def describe_error(exc: BaseException, *, limit: int = 300, with_type: bool = True) -> str:
    """An error in one line of at most ``limit`` characters (then ``...``): ``Type: message``,
    or with ``with_type=False`` the message alone (the type when there is none)."""
    text = f"{type(exc).__name__}: {exc}" if with_type else str(exc) or type(exc).__name__
    return text if len(text) <= limit else text[:limit] + "..."
