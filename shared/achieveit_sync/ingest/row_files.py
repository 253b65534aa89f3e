"""The files of rows handed back to people: rejected rows, and rows that may have been
applied, each in the input's own format, encoding and header, plus an ``Error`` column, so
that a fixed file dropped back reads exactly as the original did."""

from __future__ import annotations

import codecs
import csv
import io
from typing import IO

from achieveit_sync.ingest.reading import CsvDialect, FileFormat
from achieveit_sync.ingest.report import json_text
from achieveit_sync.ingest.validation import DISPLAY_NAMES, Layout, RejectedRow, ValidRow
from achieveit_sync.spreadsheet import neutralise

ERROR_COLUMN = "Error"

_CSV_ENCODINGS = {
    "UTF-8 with BOM": (codecs.BOM_UTF8, "utf-8"),
    "UTF-16 LE with BOM": (codecs.BOM_UTF16_LE, "utf-16-le"),
    "UTF-16 BE with BOM": (codecs.BOM_UTF16_BE, "utf-16-be"),
}
"""How a rejected CSV is written, by the input's encoding as the reader names it."""


class RowsFileWriter:
    """Writes rows in the input's format (CSV, JSON array, JSON Lines) plus an error column,
    into ``sink`` (a binary file), one row at a time: the rejected rows' file, and the file
    of rows that may have been applied.

    The output reads back as its input did: the input's header (or the documented one),
    each row padded or trimmed of empty cells to that header so that the error lands in
    the ``Error`` column, and any ``Error`` column of a file that was dropped back replaced
    by the new one."""

    def __init__(
        self,
        sink: IO[bytes],
        file_format: FileFormat,
        dialect: CsvDialect | None = None,
        encoding: str = "UTF-8",
    ) -> None:
        self._sink = sink
        self._format = file_format
        self._dialect = dialect or CsvDialect(",")
        # A CSV keeps its input's encoding and byte-order mark: Excel reads a UTF-8 file
        # without one as Windows-1252, and a UTF-16 file came from Excel's "Unicode text".
        # JSON is always UTF-8 without a mark, as RFC 8259 asks.
        bom, codec = (
            _CSV_ENCODINGS.get(encoding, (b"", "utf-8"))
            if file_format is FileFormat.CSV
            else (b"", "utf-8")
        )
        sink.write(bom)
        self._text = io.TextIOWrapper(sink, encoding=codec, newline="", write_through=True)
        self._csv = csv.writer(self._text, delimiter=self._dialect.delimiter, lineterminator="\r\n")
        self._layout: Layout | None = None
        self._width = 0
        self._kept: list[int] = []
        """Positions of the input's columns that are written (all but an old Error)."""
        self.rows = 0
        if file_format is FileFormat.JSON:
            self._text.write("[\n")

    def set_layout(self, layout: Layout | None) -> None:
        self._layout = layout

    def write(self, row: RejectedRow | ValidRow, error: str) -> None:
        record = row.record
        if self._format is FileFormat.CSV:
            if self.rows == 0:
                if self._dialect.sep_line:  # Excel reads the separator from it, and so do we
                    self._text.write(f"sep={self._dialect.delimiter}\r\n")
                header = self._header()
                self._width = len(header)
                self._kept = [i for i, name in enumerate(header) if not _is_error_column(name)]
                self._csv.writerow([neutralise(header[i]) for i in self._kept] + [ERROR_COLUMN])
            cells = self._aligned(record.cells or [])
            self._csv.writerow([neutralise(c) for c in cells] + [neutralise(error)])
        else:
            pairs = getattr(record.fields, "pairs", None)
            if pairs is not None:  # an object naming a field twice: kept as written
                text = _json_pairs_text(pairs, error)
            else:
                text = json_text(_json_document(record.fields, record.original, error))
            if self._format is FileFormat.JSON:
                text = ("  " if self.rows == 0 else ",\n  ") + text
            else:
                text += "\n"
            self._text.write(text)
        self.rows += 1

    def close(self) -> None:
        if self._format is FileFormat.JSON:
            self._text.write("\n]\n")
        self._text.flush()
        self._text.detach()

    def _aligned(self, cells: list[str]) -> list[str]:
        row = cells[: self._width] + [""] * (self._width - len(cells))
        kept = [row[i] for i in self._kept]
        extra = cells[self._width :]
        if any(cell.strip() for cell in extra):
            kept += extra  # the row's own problem ("N values"): keep what it holds
        return kept

    def _header(self) -> list[str]:
        layout = self._layout
        if layout is not None and layout.header is not None:
            return list(layout.header)
        # No header in the input: write the documented names, so the fixed file can be
        # dropped again as it is (the Error column is ignored on the way in).
        columns = layout.columns if layout is not None else ()
        return [DISPLAY_NAMES.get(c or "", "") for c in columns]


def _json_document(fields: dict[str, object] | None, original: object, error: str) -> object:
    if fields is not None:
        kept = {name: value for name, value in fields.items() if not _is_error_column(name)}
        return {**kept, "error": neutralise(error)}
    return {"value": original, "error": neutralise(error)}


def _json_pairs_text(pairs: tuple[tuple[str, object], ...], error: str) -> str:
    """An object with its fields in order, each as often as the file named it (a dict would
    keep only the last value of a repeated field), and the error."""
    kept = [(name, value) for name, value in pairs if not _is_error_column(name)]
    kept.append(("error", neutralise(error)))
    return "{" + ", ".join(f"{json_text(name)}: {json_text(value)}" for name, value in kept) + "}"


def _is_error_column(name: str) -> bool:
    return "".join(name.split()).casefold().lstrip("\ufeff") == "error"
