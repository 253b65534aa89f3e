"""Lines people read on a terminal: a progress line that redraws in place, with the total,
the rate and the time left, and human-sized numbers."""

from __future__ import annotations

import time
from collections.abc import Callable
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
    on a terminal (nothing is written when the stream is not one).

    The rate counts only what was done since the first draw (a resumed run starts with rows
    an earlier run did, and a publish spends its first seconds validating), and the time
    left is guessed only once a few seconds or a few percent make the rate worth trusting."""

    _RATE_AFTER_SECONDS = 0.5
    _ESTIMATE_AFTER_SECONDS = 3.0
    _ESTIMATE_AFTER_SHARE = 0.05

    def __init__(
        self, stream: IO[str], unit: str, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._stream = stream
        self._unit = unit
        self._clock = clock
        self._active = stream.isatty()
        self._baseline: tuple[float, int] | None = None
        self._drawn = False

    def show(self, label: str, done: int, total: int | None) -> None:
        if not self._active:
            return
        now = self._clock()
        if self._baseline is None:
            self._baseline = (now, done)
        started, done_before = self._baseline
        elapsed, done_now = now - started, done - done_before
        text = f"  {label}: {done:,}"
        if total:
            text += f" of {total:,} {self._unit} ({min(100.0, 100 * done / total):.0f}%)"
        else:
            text += f" {self._unit}"
        if done_now > 0 and elapsed >= self._RATE_AFTER_SECONDS:
            rate = done_now / elapsed
            text += f", {rate:,.0f} {self._unit}/s"
            trusted = elapsed >= self._ESTIMATE_AFTER_SECONDS or (
                total and done_now >= self._ESTIMATE_AFTER_SHARE * total
            )
            if total and total > done and trusted:
                text += f", about {human_seconds((total - done) / rate)} left"
        self._stream.write(_CLEAR_LINE + text)
        self._stream.flush()
        self._drawn = True

    def restart(self) -> None:
        """Start timing afresh (the next plan of an export)."""
        self._baseline = None

    def clear(self) -> None:
        if self._active and self._drawn:
            self._stream.write(_CLEAR_LINE)
            self._stream.flush()
            self._drawn = False
