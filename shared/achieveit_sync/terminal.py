"""Lines people read on a terminal: a progress line that redraws in place, with the total,
the rate and the time left, and human-sized numbers."""

from __future__ import annotations

import time
from typing import IO

_CLEAR_LINE = "\r\x1b[2K"


def human_bytes(count: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if count < 1024 or unit == "GB":
            return f"{count:,} {unit}" if unit == "bytes" else f"{count:,.1f} {unit}"
        count /= 1024  # type: ignore[assignment]
    return f"{count} GB"


def human_seconds(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes} min {rest:02d} s"


class ProgressLine:
    """``label: 1,500 of 10,000 rows (15%), 3,200 rows/s, about 3 s left``, redrawn in place
    on a terminal (nothing is written when the stream is not one)."""

    def __init__(self, stream: IO[str], unit: str) -> None:
        self._stream = stream
        self._unit = unit
        self._active = stream.isatty()
        self._started = time.monotonic()
        self._drawn = False

    def show(self, label: str, done: int, total: int | None) -> None:
        if not self._active:
            return
        elapsed = max(time.monotonic() - self._started, 1e-6)
        rate = done / elapsed
        text = f"  {label}: {done:,}"
        if total:
            text += f" of {total:,} {self._unit} ({min(100.0, 100 * done / total):.0f}%)"
        else:
            text += f" {self._unit}"
        if done and elapsed >= 0.5:
            text += f", {rate:,.0f} {self._unit}/s"
            if total and total > done:
                text += f", about {human_seconds((total - done) / rate)} left"
        self._stream.write(_CLEAR_LINE + text)
        self._stream.flush()
        self._drawn = True

    def restart(self) -> None:
        """Start timing afresh (the next plan of an export)."""
        self._started = time.monotonic()

    def clear(self) -> None:
        if self._active and self._drawn:
            self._stream.write(_CLEAR_LINE)
            self._stream.flush()
            self._drawn = False
