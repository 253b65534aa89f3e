"""What a person reads first about a file: one headline, rejections grouped by reason, and
hints when a whole column looks wrong (day-first dates, numbers formatted as text).

The same summary heads the report JSON (``summary``), the SNS message and the command
line's text output, so a user sees the same words wherever they look.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from achieveit_sync.ingest.validation import DAY_FIRST_REASON, RejectedRow

MAX_GROUPS = 50
"""Distinct reasons listed; past this, rows are counted under "other reasons"."""
FIRST_LINES_SHOWN = 5

_SPECIFICS = re.compile(r"'[^']*'|\d+")
"""Quoted values and numbers: what makes two rejections for one reason read differently."""
_FORMATTED_NUMBER_REASONS = frozenset(
    {
        "is a percentage",
        "has a currency sign",
        "has thousands separators",
        "has spaces as thousands separators",
        "uses a decimal comma",
        "has dots between thousands",
    }
)
_EXCEL_SERIAL_REASON = "looks like an Excel date serial number"
_UNKNOWN_ID = "unknown external id"


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """``1 row``, ``2 rows``, ``1,000 rows``."""
    return f"{count:,} {noun if count == 1 else (nouns or noun + 's')}"


@dataclass
class RejectionGroup:
    field_name: str
    reason: str
    """The first such row's reason, as written (its value and numbers included)."""
    hint: str
    value: str
    rows: int = 0
    first: list[str] = field(default_factory=list)
    """Where the first few are: ``line 7`` or ``line 1 (element 3)``."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "field": self.field_name,
            "reason": self.reason,
            "hint": self.hint,
            "example": self.value,
            "rows": self.rows,
            "first": self.first,
        }

    def line(self) -> str:
        """``2 rows: status 'Sideways' is not an AchieveIt status - use one of ... (line 3,
        line 7)``."""
        value = f" '{self.value}'" if self.value and self.rows == 1 else ""
        example = f" (e.g. '{self.value}')" if self.value and self.rows > 1 else ""
        where = ", ".join(self.first)
        more = self.rows - len(self.first)
        where += f" and {more:,} more" if more > 0 else ""
        return (
            f"{plural(self.rows, 'row')}: {self.field_name}{value}{example} {self.reason} - "
            f"{self.hint} ({where})"
        )


@dataclass
class RejectionSummary:
    """Rejected rows grouped by (field, reason and hint without their specifics), in the order the
    reasons first appear; every rejected row counts, however many the report lists."""

    groups: dict[tuple[str, str, str], RejectionGroup] = field(default_factory=dict)
    other_rows: int = 0

    def add(self, row: RejectedRow) -> None:
        where = row.record.where
        for problem in row.problems:
            # The hint is part of the key: 'Done' and 'Cancelled' are both not statuses,
            # but each has its own fix.
            key = (
                problem.field,
                _SPECIFICS.sub("#", problem.reason),
                _SPECIFICS.sub("#", problem.hint),
            )
            group = self.groups.get(key)
            if group is None:
                if len(self.groups) >= MAX_GROUPS:
                    self.other_rows += 1
                    continue
                group = self.groups[key] = RejectionGroup(
                    problem.field, problem.reason, problem.hint, problem.value
                )
            group.rows += 1
            if len(group.first) < FIRST_LINES_SHOWN:
                group.first.append(where)

    def ordered(self) -> list[RejectionGroup]:
        return sorted(self.groups.values(), key=lambda g: -g.rows)

    def hints(self) -> list[str]:
        """What a whole column's rejections say about the file, beyond each row."""
        by_reason: dict[str, int] = {}
        for group in self.groups.values():
            reason = group.reason.casefold()
            key = next(
                (
                    name
                    for name, test in (
                        ("day-first", group.reason == DAY_FIRST_REASON),
                        ("decimal-comma", group.reason == "uses a decimal comma"),
                        ("formatted", group.reason in _FORMATTED_NUMBER_REASONS),
                        ("serial", group.reason == _EXCEL_SERIAL_REASON),
                        ("unknown-id", _UNKNOWN_ID in reason),
                    )
                    if test
                ),
                None,
            )
            if key is not None:
                by_reason[key] = by_reason.get(key, 0) + group.rows
        hints = []
        if by_reason.get("day-first", 0) >= 2:
            hints.append(
                "the As Of Date column looks day-first (DD/MM/YYYY): write ISO dates "
                "(2026-11-30) or US dates (11/30/2026); in Excel, format the column as "
                "yyyy-mm-dd before saving"
            )
        if by_reason.get("decimal-comma", 0) >= 2:
            hints.append(
                "the Metric Value column uses decimal commas, as Excel writes numbers where a "
                "comma is the decimal separator: save with a decimal point and no thousands "
                "separators (Excel: File > Options > Advanced, clear 'Use system separators', "
                "decimal separator '.', thousands separator empty)"
            )
        elif by_reason.get("formatted", 0) >= 2:
            hints.append(
                "the Metric Value column looks formatted as text (percent or currency signs, "
                "separators): format it as a plain number before saving (Excel: Format Cells "
                "> Number, no thousands separator; 20% becomes 0.2)"
            )
        if by_reason.get("serial", 0) >= 2:
            hints.append(
                "the As Of Date column holds Excel date numbers: format it as a date "
                "(yyyy-mm-dd) before saving"
            )
        if by_reason.get("unknown-id", 0) >= 2:
            hints.append(
                "AchieveIt knows several of these external IDs in no plan the key can see: "
                "is this the right organisation, and does the service account see the plan? "
                "Copy IDs from templates/<planId>/progress-updates.csv"
            )
        return hints

    def as_dict(self) -> dict[str, Any]:
        return {
            "rejectedByReason": [group.as_dict() for group in self.ordered()],
            "otherReasonsRows": self.other_rows,
            "hints": self.hints(),
        }
