"""Cells that spreadsheet software opens: formula neutralising, both ways, and number syntax.

Every CSV this package writes (rejected rows, ambiguous rows, backup tables, upload
templates) prefixes a cell that Excel would run as a formula (``=``, ``+``, ``-``, ``@``, a
tab or a carriage return first) with ``'``. Reading such a file back, ``unneutralise`` removes
exactly that prefix again, so a file we wrote and a user dropped back unchanged carries the
same external IDs and comments as the original.
"""

from __future__ import annotations

import re

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
NEUTRALISING_MARK = "'"

# re.ASCII: \d must not match other scripts' digits (superscripts, Arabic-Indic), which int()
# and Decimal() read differently or not at all.
PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
"""A number as the API documents it: digits, an optional point and exponent, no separators."""


def neutralise(text: str) -> str:
    """Make spreadsheet software show ``text`` instead of evaluating it as a formula.

    Plain numbers such as ``-3.5`` are left alone: they are data, and a prefix would make a
    fixed file fail validation when it is dropped again."""
    if text.startswith(FORMULA_PREFIXES) and not PLAIN_NUMBER.fullmatch(text):
        return NEUTRALISING_MARK + text
    return text


def unneutralise(text: str) -> str:
    """Undo ``neutralise``: ``'-AB`` is read as ``-AB``. A ``'`` before anything else stays."""
    if text.startswith(NEUTRALISING_MARK) and text[1:2] and text[1] in FORMULA_PREFIXES:
        return text[1:]
    return text
