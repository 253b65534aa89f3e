"""The progress line people watch: a rate from this run's work only, and a time left only
once the rate is worth trusting."""

from __future__ import annotations

import io

from achieveit_sync.terminal import ProgressLine


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True

    def last_line(self) -> str:
        return self.getvalue().rsplit("\x1b[2K", 1)[-1]


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_no_time_left_is_guessed_from_the_first_second() -> None:
    terminal, clock = _Terminal(), _Clock()
    line = ProgressLine(terminal, "rows", clock=clock)
    line.show("sending", 0, 100_000)

    clock.now += 1.0
    line.show("sending", 1_000, 100_000)  # 1% in 1 s: a rate, but no guess yet
    assert terminal.last_line() == "  sending: 1,000 of 100,000 rows (1%), 1,000 rows/s"

    clock.now += 2.0
    line.show("sending", 3_000, 100_000)  # 3 s in: the guess
    assert terminal.last_line().endswith(", 1,000 rows/s, about 1 min 37 s left")


def test_rows_an_earlier_run_settled_do_not_count_in_the_rate() -> None:
    terminal, clock = _Terminal(), _Clock()
    line = ProgressLine(terminal, "rows", clock=clock)
    line.show("sending", 90_000, 100_000)  # resumed: 90% done before this run

    clock.now += 5.0
    line.show("sending", 95_000, 100_000)

    assert terminal.last_line() == (
        "  sending: 95,000 of 100,000 rows (95%), 1,000 rows/s, about 5.0 s left"
    )


def test_a_large_share_done_quickly_gives_a_guess_before_three_seconds() -> None:
    terminal, clock = _Terminal(), _Clock()
    line = ProgressLine(terminal, "rows", clock=clock)
    line.show("sending", 0, 1_000)
    clock.now += 1.0
    line.show("sending", 100, 1_000)  # 10% in 1 s

    assert terminal.last_line().endswith("100 rows/s, about 9.0 s left")


def test_nothing_is_drawn_when_the_output_is_not_a_terminal() -> None:
    stream = io.StringIO()
    ProgressLine(stream, "rows").show("sending", 5, 10)
    assert stream.getvalue() == ""
