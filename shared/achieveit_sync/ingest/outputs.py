"""What the ingest writes back next to a file, and under which keys.

Rejected and ambiguous rows are spooled gzip-compressed in the function's temporary storage
(``/tmp`` holds 512 MB by default; rows compress several times over), then uploaded under the
source's own key: compressed when the source was, so ``x.csv`` and ``x.csv.gz`` never share
an output. Every derived key stays within S3's limit of 1,024 bytes.
"""

from __future__ import annotations

import gzip
import hashlib
import tempfile
from pathlib import PurePosixPath
from typing import IO

MAX_KEY_BYTES = 1024
"""S3's limit on a key, in bytes of UTF-8."""
_DIGEST_CHARS = 16


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
