"""What changed between two backups: items added, removed, and changed in the fields people
track (status, current value, dates, assignee, name)."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from achieveit_sync.errors import AchieveItSyncError

TRACKED_FIELDS = ("name", "statusName", "currentValue", "start", "due", "assignedToFullName")


class BackupNotFoundError(AchieveItSyncError):
    pass


@dataclass
class BackupDiff:
    added: list[dict[str, Any]] = field(default_factory=list)
    removed: list[dict[str, Any]] = field(default_factory=list)
    changed: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"added": self.added, "removed": self.removed, "changed": self.changed}

    def as_text(self) -> str:
        lines = [
            f"{len(self.added)} added, {len(self.removed)} removed, {len(self.changed)} changed"
        ]
        lines += [f"+ {_label(item)}" for item in self.added]
        lines += [f"- {_label(item)}" for item in self.removed]
        for change in self.changed:
            details = ", ".join(
                f"{name}: {old!r} -> {new!r}" for name, (old, new) in change["changes"].items()
            )
            lines.append(f"~ {_label(change)}: {details}")
        return "\n".join(lines) + "\n"


def diff_backups(before: str, after: str) -> BackupDiff:
    """Compare two backups, each named by its manifest or its folder (local paths)."""
    old = dict(_items_by_id(before))
    result = BackupDiff()
    seen: set[str] = set()
    for item_id, item in _items_by_id(after):
        seen.add(item_id)
        previous = old.get(item_id)
        if previous is None:
            result.added.append(_summary(item))
            continue
        changes = {
            name: [previous.get(name), item.get(name)]
            for name in TRACKED_FIELDS
            if previous.get(name) != item.get(name)
        }
        if changes:
            result.changed.append({**_summary(item), "changes": changes})
    result.removed = [_summary(item) for item_id, item in old.items() if item_id not in seen]
    return result


def _items_by_id(location: str) -> Iterator[tuple[str, dict[str, Any]]]:
    manifest_path, manifest = _manifest(Path(location))
    root = Path(str(manifest_path).removesuffix(str(manifest["manifestKey"])))
    try:
        items_file = root / manifest["files"]["items.json.gz"]["key"]
    except (KeyError, TypeError):
        raise BackupNotFoundError(f"{manifest_path} names no items.json.gz") from None
    if not items_file.is_file():
        raise BackupNotFoundError(f"the manifest names {items_file}, which does not exist")
    try:
        with gzip.open(items_file, "rt", encoding="utf-8") as handle:
            items = json.load(handle)
    except (OSError, ValueError) as exc:
        raise BackupNotFoundError(f"{items_file} cannot be read ({exc})") from None
    for item in items if isinstance(items, list) else ():
        if isinstance(item, dict):
            yield str(item.get("id")), item


def _manifest(path: Path) -> tuple[Path, dict[str, Any]]:
    """The manifest a location names: a backup folder, its manifest.json, or a plan's
    latest.json (which names the newest complete backup's manifest)."""
    if path.is_dir():
        path = path / "manifest.json"
    document = _json(path)
    if "manifestKey" in document:
        return path, document
    manifest_key = document.get("manifest")
    if isinstance(manifest_key, str) and path.name == "latest.json":
        # latest.json sits at backups/<plan>/latest.json; keys start at the layout's root.
        root = path.parent.parent.parent
        manifest_path = root / manifest_key
        return manifest_path, _json(manifest_path)
    raise BackupNotFoundError(
        f"{path} is neither a backup's manifest.json nor a plan's latest.json"
    )


def _json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise BackupNotFoundError(f"no backup manifest at {path}")
    try:
        document = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise BackupNotFoundError(f"{path} cannot be read as JSON ({exc})") from None
    if not isinstance(document, dict):
        raise BackupNotFoundError(f"{path} is not a backup manifest (not a JSON object)")
    return document


def _summary(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": item.get("id"),
        "externalId": item.get("externalId"),
        "sequenceId": item.get("sequenceId"),
        "name": item.get("name"),
    }


def _label(item: dict[str, Any]) -> str:
    return f"{item.get('sequenceId') or '?'} {item.get('name') or ''} ({item.get('id')})"
