"""JSON read and written again by the backup: every number keeps its value, the output is
always strict JSON (what jq, JavaScript and restore tools read)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from achieveit_sync import exact_json
from achieveit_sync.exact_json import JsonNumber, NonFiniteNumber
from hypothesis import given
from hypothesis import strategies as st


def strict(text: str) -> Any:
    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse, parse_float=Decimal, parse_int=Decimal)


@pytest.mark.parametrize(
    "number",
    ["1e400", "-1e400", "1E-400", "0.1000000000000000000001", "1" + "0" * 5000, "-" + "9" * 4301],
)
def test_numbers_a_double_cannot_hold_are_written_back_as_they_were_read(number: str) -> None:
    value = exact_json.loads('{"v": ' + number + "}")

    assert value == {"v": JsonNumber(number)}
    text, non_finite = exact_json.dumps(value)
    assert text == '{"v":' + number + "}"
    assert non_finite == 0
    assert strict(text)["v"] == Decimal(number)


@pytest.mark.parametrize(
    ("number", "read"), [("2.50", 2.5), ("1E+2", 100.0), ("-0.0", -0.0), ("42", 42), ("0.1", 0.1)]
)
def test_numbers_a_double_holds_exactly_stay_ordinary(number: str, read: float) -> None:
    value = exact_json.loads(number)

    assert value == read
    assert type(value) is type(read)


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_become_strings_and_are_counted(constant: str) -> None:
    value = exact_json.loads('[{"v": ' + constant + "}, 1]")

    assert value == [{"v": NonFiniteNumber(constant)}, 1]
    text, non_finite = exact_json.dumps(value)
    assert strict(text) == [{"v": constant}, 1]
    assert non_finite == 1


def test_ordinary_items_come_out_as_json_dumps_writes_them() -> None:
    item = {"id": "a", "name": "caf\u00e9 \U0001f600", "n": [1, 2.5, None, True], "o": {}}

    assert exact_json.dumps(item) == (
        json.dumps(item, ensure_ascii=False, separators=(",", ":")),
        0,
    )


def test_an_item_with_a_kept_number_escapes_like_json_dumps() -> None:
    item = {"name": "broken \ud800 \u00e9\n", "v": JsonNumber("1e400")}

    text, _ = exact_json.dumps(item, ensure_ascii=True)

    assert text.isascii()
    assert text == '{"name":"broken \\ud800 \\u00e9\\n","v":1e400}'
    assert exact_json.loads(text) == item


json_numbers = st.one_of(
    st.integers().map(str),
    st.decimals(allow_nan=False, allow_infinity=False).map(lambda d: f"{d:E}"),
    st.from_regex(r"-?(0|[1-9][0-9]{0,40})(\.[0-9]{1,40})?([eE][+-]?[0-9]{1,4})?", fullmatch=True),
)


@given(json_numbers)
def test_every_json_number_keeps_its_value(number: str) -> None:
    text, non_finite = exact_json.dumps(exact_json.loads("[" + number + "]"))

    assert non_finite == 0
    assert strict(text)[0] == Decimal(number)
