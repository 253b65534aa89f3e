"""What the ingest writes back next to a file, and under which keys: the report, the
rejected and ambiguous rows, the archived source.

Rejected and ambiguous rows are spooled gzip-compressed in the function's temporary storage
(``/tmp`` holds 512 MB by default; rows compress several times over), then uploaded under the
source's own key: compressed when the source was, so ``x.csv`` and ``x.csv.gz`` never share
an output. Every derived key stays within S3's limit of 1,024 bytes.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import tempfile
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import IO

from achieveit_sync.ingest.reading import FileFormat
from achieveit_sync.ingest.report import FileReport
from achieveit_sync.storage import ObjectRef, S3Storage

log = logging.getLogger(__name__)

MAX_KEY_BYTES = 1024
"""S3's limit on a key, in bytes of UTF-8."""
REPORTS_PREFIX = "reports/"
REJECTED_PREFIX = "rejected/"
AMBIGUOUS_PREFIX = "ambiguous/"
ARCHIVE_PREFIX = "archive/"
_DIGEST_CHARS = 16
_CONTENT_TYPES = {
    FileFormat.CSV: "text/csv; charset=utf-8",
    FileFormat.JSON: "application/json",
    FileFormat.JSONL: "application/x-ndjson",
}


def output_key(prefix: str, source_key: str, suffix: str = "") -> str:
    """``prefix + source_key + suffix``, shortened when it would pass ``MAX_KEY_BYTES``: the
    key's head, ``~`` and a digest of the whole key, then its extension (so the file still
    opens, and drops back, as what it is). The same source key always gives the same key."""
    full = f"{prefix}{source_key}{suffix}"
    if len(full.encode("utf-8")) <= MAX_KEY_BYTES:
        return full
    path = PurePosixPath(source_key)
    suffixes = path.suffixes[-2:] if path.suffix.lower() == ".gz" else path.suffixes[-1:]
    extension = "".join(suffixes)[-20:]
    digest = hashlib.sha256(source_key.encode("utf-8")).hexdigest()[:_DIGEST_CHARS]
    tail = f"~{digest}{extension}{suffix}"
    budget = MAX_KEY_BYTES - len(prefix.encode("utf-8")) - len(tail.encode("utf-8"))
    head = source_key.encode("utf-8")[:budget].decode("utf-8", errors="ignore")
    return f"{prefix}{head}{tail}"


class RowsSpool:
    """A temporary file holding rows written through ``sink``, compressed as they come."""

    def __init__(self) -> None:
        self._file: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close()
        self._gzip = gzip.GzipFile(fileobj=self._file, mode="wb", compresslevel=6, mtime=0)
        self.sink: IO[bytes] = self._gzip  # type: ignore[assignment]

    def contents(self, *, compressed: bool) -> IO[bytes]:
        """The rows written, from the start: gzip data, or decompressed as they are read."""
        if not self._gzip.closed:
            self._gzip.close()
        self._file.seek(0)
        if compressed:
            return self._file
        return gzip.GzipFile(fileobj=self._file, mode="rb")  # type: ignore[return-value]

    def close(self) -> None:
        if not self._gzip.closed:
            self._gzip.close()
        self._file.close()

    def __enter__(self) -> RowsSpool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class FileOutputs:
    """The outputs of one file in its bucket: the one place they are named and written.

    ``rejected`` and ``ambiguous`` are the spools the pipeline writes into; ``finish``
    stores everything a run produced, in an order that makes a crash harmless (lists, then
    the report, then the source moved to the archive)."""

    def __init__(self, storage: S3Storage, ref: ObjectRef) -> None:
        self._storage = storage
        self._ref = ref
        self.report_key = output_key(REPORTS_PREFIX, ref.key, ".json")
        self.rejected = RowsSpool()
        self.ambiguous = RowsSpool()

    def uri(self, key: str) -> str:
        return f"s3://{self._ref.bucket}/{key}"

    def finish(self, report: FileReport, *, finished: bool) -> None:
        """Store a run's outputs. A finished file also gets its lists (or loses an earlier
        version's) and leaves ``incoming/`` for the archive."""
        report.outputs["report"] = self.uri(self.report_key)
        archive_key = None
        if finished and report.file_format:
            self._write_lists(report)
        if finished:
            archive_key = self._archive_key()
            report.outputs["archive"] = self.uri(archive_key)
        self.write_report(report)
        if archive_key is not None:
            self._storage.move(self._ref, archive_key)

    def write_report(self, report: FileReport) -> None:
        report.outputs["report"] = self.uri(self.report_key)
        self._storage.put_bytes(
            self._ref.bucket, self.report_key, report.to_json(), "application/json"
        )

    def close(self) -> None:
        self.rejected.close()
        self.ambiguous.close()

    def __enter__(self) -> FileOutputs:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _write_lists(self, report: FileReport) -> None:
        """The rejected and ambiguous rows, next to the file (gzip if the source was)."""
        content_type = _CONTENT_TYPES[FileFormat(report.file_format or "csv")]
        if report.file_format == FileFormat.CSV and (report.encoding or "").startswith("UTF-16"):
            content_type = "text/csv; charset=utf-16"  # written as it came (with its mark)
        for name, prefix, rows, spool in (
            ("rejected", REJECTED_PREFIX, report.counts.rejected, self.rejected),
            ("ambiguous", AMBIGUOUS_PREFIX, report.counts.ambiguous, self.ambiguous),
        ):
            key = output_key(prefix, self._ref.key)
            if rows:
                body = spool.contents(compressed=report.compressed)
                self._storage.put_stream(
                    self._ref.bucket,
                    key,
                    body,
                    "application/gzip" if report.compressed else content_type,
                )
                report.outputs[name] = self.uri(key)
            else:
                # An earlier version's list must not outlive it: dropped back, it would
                # send rows again that this version has just published.
                self._storage.delete_if_present(self._ref.bucket, key)

    def _archive_key(self) -> str:
        now = datetime.now(UTC)
        key = output_key(f"{ARCHIVE_PREFIX}{now:%Y-%m-%d}/", self._ref.key)
        if self._storage.exists(self._ref.bucket, key):
            # An earlier version of this key was archived today: keep both, side by side.
            key = output_key(f"{ARCHIVE_PREFIX}{now:%Y-%m-%d}/{now:%H%M%S}/", self._ref.key)
        return key
