"""JSON read and written again without changing a number, and always as strict JSON.

Python's ``json`` turns ``1e400`` into ``inf`` (written back as ``Infinity``, which is not
JSON), ``0.1000000000000000000001`` into ``0.1``, and refuses an integer of more than 4,300
digits. A backup must hold what the API sent, so ``loads`` keeps every number whose value a
Python ``int`` or ``float`` cannot hold exactly as a ``JsonNumber``: the digits as written.
``dumps`` writes them back verbatim. Other numbers stay ``int`` and ``float`` when the float
is written back as the same decimal value (``2.50`` is read as 2.5 and written ``2.5``), so
ordinary data takes the C encoder's fast path.

``NaN``, ``Infinity`` and ``-Infinity`` are not JSON (RFC 8259) although Python reads them:
``loads`` keeps them as ``NonFiniteNumber`` and ``dumps`` writes them as the strings
``"NaN"``, ``"Infinity"`` and ``"-Infinity"``, counting them, so that the output stays strict
JSON and the caller can say what was changed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from json.encoder import encode_basestring, encode_basestring_ascii
from typing import Any

MAX_INT_DIGITS = 4300
"""Python's default limit for converting text to ``int``; longer integers stay text."""


@dataclass(frozen=True, slots=True, repr=False)
class JsonNumber:
    """A JSON number kept as the text it was written with (shown as that text)."""

    text: str

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return self.text


@dataclass(frozen=True, slots=True, repr=False)
class NonFiniteNumber:
    """``NaN``, ``Infinity`` or ``-Infinity`` as a (lenient) JSON text held it."""

    text: str

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return self.text


def parse_int(text: str) -> int | JsonNumber:
    return int(text) if len(text) <= MAX_INT_DIGITS else JsonNumber(text)


def parse_float(text: str) -> float | JsonNumber:
    value = float(text)
    if math.isfinite(value) and (repr(value) == text or _same_value(text, value)):
        return value
    return JsonNumber(text)


def parse_constant(text: str) -> NonFiniteNumber:
    return NonFiniteNumber(text)


DECODER = json.JSONDecoder(
    parse_float=parse_float, parse_int=parse_int, parse_constant=parse_constant
)
"""A decoder with these rules, for ``raw_decode`` (reading a stream item by item)."""


def loads(text: str) -> Any:
    """``json.loads``, but every number keeps its exact value (see the module's doc)."""
    try:
        # Integers are read by the C scanner itself (a Python hook per integer costs a third
        # more time); only a text with an integer past Python's limit is read again.
        return json.loads(text, parse_float=parse_float, parse_constant=parse_constant)
    except ValueError as exc:
        if "integer string conversion" not in str(exc):
            raise
    return json.loads(
        text, parse_float=parse_float, parse_int=parse_int, parse_constant=parse_constant
    )


def dumps(value: object, *, ensure_ascii: bool = False) -> tuple[str, int]:
    """Compact strict JSON (``,`` and ``:`` without spaces; characters as they are, or
    escaped with ``ensure_ascii``), and how many non-finite numbers were written as strings.
    Numbers kept by ``loads`` come out as they were read."""
    try:
        text = json.dumps(
            value,
            ensure_ascii=ensure_ascii,
            separators=(",", ":"),
            allow_nan=False,
            default=_special,
        )
    except _SpecialValueError:
        writer = _Writer(encode_basestring_ascii if ensure_ascii else encode_basestring)
        writer.write(value)
        return "".join(writer.parts), writer.non_finite
    return text, 0


def _same_value(text: str, value: float) -> bool:
    """Whether ``value``, written back as Python writes a float, is exactly the number
    ``text`` says (``2.50`` and ``1E+2`` are; ``55935221931023592`` as a float is written
    ``5.593522193102359e+16``, which is not)."""
    try:
        return Decimal(repr(value)) == Decimal(text)
    except InvalidOperation:
        return False


class _SpecialValueError(Exception):
    """A value the C encoder cannot write as it was read: take the slower, exact path."""


def _special(value: object) -> object:
    if isinstance(value, JsonNumber | NonFiniteNumber):
        raise _SpecialValueError
    raise TypeError(f"{type(value).__name__} is not JSON")


class _Writer:
    """The exact path: written piece by piece, as ``json.dumps`` would, with kept numbers
    verbatim and non-finite ones as strings."""

    def __init__(self, string: Callable[[str], str]) -> None:
        self.parts: list[str] = []
        self.non_finite = 0
        self._string = string

    def write(self, value: object) -> None:  # noqa: PLR0912 - one branch per JSON type
        parts = self.parts
        if isinstance(value, str):
            parts.append(self._string(value))
        elif value is None:
            parts.append("null")
        elif value is True:
            parts.append("true")
        elif value is False:
            parts.append("false")
        elif isinstance(value, JsonNumber):
            parts.append(value.text)
        elif isinstance(value, NonFiniteNumber):
            self.non_finite += 1
            parts.append(self._string(value.text))
        elif isinstance(value, int):
            parts.append(int.__repr__(value))
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise ValueError(f"{value!r} is not JSON")
            parts.append(float.__repr__(value))
        elif isinstance(value, dict):
            parts.append("{")
            for index, (key, item) in enumerate(value.items()):
                if index:
                    parts.append(",")
                parts.append(self._string(str(key)) + ":")
                self.write(item)
            parts.append("}")
        elif isinstance(value, list | tuple):
            parts.append("[")
            for index, item in enumerate(value):
                if index:
                    parts.append(",")
                self.write(item)
            parts.append("]")
        else:
            raise TypeError(f"{type(value).__name__} is not JSON")
