"""Which kind of update a dropped object holds, from where it was dropped."""

from __future__ import annotations

from achieveit_sync.updates import UpdateKind

INCOMING_PREFIX = "incoming/"
_KIND_BY_FOLDER = {
    "incoming/progress/": UpdateKind.PROGRESS,
    "incoming/metrics/": UpdateKind.METRIC,
}


def kind_for_key(key: str) -> UpdateKind | None:
    """``incoming/progress/...`` and ``incoming/metrics/...`` say it; elsewhere the columns
    decide (``None``)."""
    for folder, kind in _KIND_BY_FOLDER.items():
        if key.startswith(folder):
            return kind
    return None


def kind_reason_for_key(key: str) -> str | None:
    """The words for ``kind_for_key``'s answer ("dropped under incoming/progress/")."""
    folder = next((f for f in _KIND_BY_FOLDER if key.startswith(f)), None)
    return f"dropped under {folder}" if folder else None
