"""The backups bucket's lifecycle and the export function agree on how long data lives
(issue 10, point 8): one age-based expiration for everything under backups/, whose age the
function is told, so that it never points latest.json at data close to expiring."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from achieveit_sandbox.cloudformation import load_template
from achieveit_sync.backup.run import reuse_window
from achieveit_sync.errors import ConfigurationError
from achieveit_sync.settings import DEFAULT_EXPIRATION_DAYS, BackupSettings

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(TEMPLATE)


def rules(template: dict[str, Any]) -> list[dict[str, Any]]:
    bucket = template["Resources"]["BackupBucket"]["Properties"]
    return list(bucket["LifecycleConfiguration"]["Rules"])


def test_every_expiration_of_backups_is_the_one_the_function_is_told(
    template: dict[str, Any],
) -> None:
    expiring = [r for r in rules(template) if "ExpirationInDays" in r or "ExpirationDate" in r]
    assert expiring, "the backups bucket should age backups out"
    # The plan history (history/) keeps its own, longer retention (issue 15); every other
    # rule, and one that covers backups/, is the one the function reckons with.
    expiring = [r for r in expiring if r.get("Prefix") != "history/"]
    assert any(r.get("Prefix") in (None, "", "backups/") for r in expiring)
    for rule in expiring:
        # No date-based expiry, no filter that would give backups/ a shorter life than the
        # function reckons with.
        assert "ExpirationDate" not in rule
        assert rule["ExpirationInDays"] == {"Ref": "BackupExpirationDays"}
    environment = template["Resources"]["ExportFunction"]["Properties"]["Environment"]
    assert environment["Variables"]["BACKUP_EXPIRATION_DAYS"] == {"Ref": "BackupExpirationDays"}
    default = template["Parameters"]["BackupExpirationDays"]["Default"]
    assert default == DEFAULT_EXPIRATION_DAYS


@pytest.mark.parametrize(
    ("expiration_days", "reused_at_most", "left_at_least"),
    [(400, 30, 370), (60, 30, 30), (30, 15, 15), (7, 3, 4), (2, 1, 1), (1, 0, 1)],
)
def test_reused_data_always_keeps_most_of_its_life(
    expiration_days: int, reused_at_most: int, left_at_least: int
) -> None:
    window = reuse_window(expiration_days)

    assert window == timedelta(days=reused_at_most)
    assert timedelta(days=expiration_days) - window >= timedelta(days=left_at_least)
    assert window <= timedelta(days=expiration_days) / 2


def test_the_function_reads_the_expiration_and_refuses_nonsense() -> None:
    base = {"BACKUP_BUCKET": "backups", "ACHIEVEIT_API_KEY_SECRET": "s"}

    assert BackupSettings.from_env(base).expiration_days == 400
    assert BackupSettings.from_env({**base, "BACKUP_EXPIRATION_DAYS": "90"}).expiration_days == 90
    for bad in ("0", "-5", "ten", "1e3", "٣"):
        with pytest.raises(ConfigurationError, match="BACKUP_EXPIRATION_DAYS must be a whole"):
            BackupSettings.from_env({**base, "BACKUP_EXPIRATION_DAYS": bad})
