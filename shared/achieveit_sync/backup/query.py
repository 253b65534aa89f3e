"""``achieveit-sync query``: SQL over the plan history with DuckDB, locally, the way a data
team queries it with Athena in AWS.

``plan_item_history`` is a view over ``history/snapshot_date=*/plan_id=*/*.jsonl.gz`` under a
folder (an ``export --out`` folder) or a bucket and prefix, with hive partitioning, so a
filter on ``snapshot_date`` or ``plan_id`` skips the other folders' files. From S3 the
files come through ``storage.py`` (boto3) as DuckDB asks for them: only the partitions the
query needs are fetched, and no DuckDB extension is downloaded (the JSON reader is built
into DuckDB's wheel, and automatic extension installs are switched off).

The named queries are the template's (``AWS::Athena::NamedQuery`` resources): one SQL text
for Athena and DuckDB, written in what both accept.

DuckDB is a development and command-line dependency (requirements-dev.txt, or the
``achieveit-sync[query]`` extra), never in the Lambda layer: this module imports it only when
a query runs, after ``require_dependencies`` has said what is missing.
"""

from __future__ import annotations

import csv
import difflib
import importlib
import io
import json
import math
import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from achieveit_sync.backup.history import HISTORY_COLUMNS, HISTORY_PREFIX, PATH_PARTITIONS
from achieveit_sync.errors import AchieveItSyncError, ConfigurationError
from achieveit_sync.spreadsheet import neutralise

if TYPE_CHECKING:
    from achieveit_sync.storage import S3Storage

TABLE = "plan_item_history"
TEMPLATE = Path(__file__).resolve().parents[3] / "template.yaml"
"""The template beside the package in a checkout (``pip install -e .``)."""
_DUCKDB_TYPES = {
    "string": "VARCHAR",
    "timestamp": "TIMESTAMP",
    "double": "DOUBLE",
    "bigint": "BIGINT",
}
_PROTOCOL = "achieveit-history"


class QueryDataError(AchieveItSyncError):
    """The query ran into history files it could not read (exit 1)."""


QUERY_DEPENDENCIES = (
    ("duckdb", "duckdb"),
    ("yaml", "PyYAML"),
    ("fsspec", "fsspec"),
    ("pytz", "pytz"),
)
"""(module, package) the query command needs: the ``query`` extra in pyproject.toml. DuckDB
needs pytz to return a TIMESTAMP WITH TIME ZONE (``now()``, ``AT TIME ZONE``)."""


def require_dependencies() -> None:
    """A usage error naming what to install when a query dependency is missing."""
    missing = []
    for module, package in QUERY_DEPENDENCIES:
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(package)
    if missing:
        raise ConfigurationError(
            f"achieveit-sync query needs {', '.join(missing)}, which are not installed: "
            "pip install 'achieveit-sync[query]' (in a checkout: pip install -e '.[query]', "
            "or pip install -r requirements-dev.txt)"
        )


_NAME_LIKE = re.compile(r"[A-Za-z0-9_]+(?:-[A-Za-z0-9_]+)+")
"""A word with dashes: a named query's shape, which is never SQL on its own."""


def resolve_named_query(text: str, queries: Sequence[NamedQuery]) -> str:
    """The SQL of the named query ``text``, ``text`` itself if it is SQL; a usage error for
    what looks like a mistyped name."""
    by_name = {named.name: named for named in queries}
    if text.strip() in by_name:
        return by_name[text.strip()].sql
    if _NAME_LIKE.fullmatch(text.strip()):
        close = difflib.get_close_matches(text.strip(), list(by_name), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise ConfigurationError(
            f"no named query {text.strip()!r}{hint}; achieveit-sync query --list shows them"
        )
    return text


@dataclass(frozen=True)
class NamedQuery:
    name: str
    description: str
    sql: str


@dataclass
class QueryResult:
    columns: list[str]
    rows: list[tuple[Any, ...]]
    files_read: int | None = None
    """From S3: how many snapshot files were fetched (of ``files_listed``)."""
    files_listed: int | None = None


def named_queries(template: Path = TEMPLATE) -> list[NamedQuery]:
    """The template's ``AWS::Athena::NamedQuery`` resources, in template order."""
    import yaml

    class _Loader(yaml.SafeLoader):
        """CloudFormation's short tags (``!Ref``...) read as plain values."""

    def any_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> object:
        if isinstance(node, yaml.ScalarNode):
            return loader.construct_scalar(node)
        if isinstance(node, yaml.SequenceNode):
            return loader.construct_sequence(node, deep=True)
        assert isinstance(node, yaml.MappingNode)  # noqa: S101 - the only node left
        return loader.construct_mapping(node, deep=True)

    _Loader.add_multi_constructor("!", any_tag)
    try:
        document = yaml.load(template.read_text("utf-8"), Loader=_Loader)  # noqa: S506
    except FileNotFoundError:
        raise ConfigurationError(
            f"{template} not found: the named queries come from the stack's template; give "
            "it with --template (or run from a checkout of achieveit-sync)"
        ) from None
    queries = []
    for resource in (document.get("Resources") or {}).values():
        if resource.get("Type") != "AWS::Athena::NamedQuery":
            continue
        properties = resource["Properties"]
        queries.append(
            NamedQuery(
                str(properties["Name"]),
                " ".join(str(properties.get("Description", "")).split()),
                str(properties["QueryString"]).strip(),
            )
        )
    return queries


def run_query(
    location: str,
    sql: str,
    *,
    storage_factory: Any = None,
) -> QueryResult:
    """Run ``sql`` with ``plan_item_history`` defined over the history at ``location`` (a
    folder, or ``s3://bucket[/prefix]``)."""
    import duckdb

    _checked_statements(sql)
    if location[:5].lower() == "s3://":
        location = "s3://" + location[5:]  # S3://bucket: the same bucket
    connection = duckdb.connect(
        config={"autoinstall_known_extensions": False, "threads": 2},
    )
    s3_files: _HistoryFiles | None = None
    try:
        if location.startswith("s3://"):
            s3_files = _HistoryFiles.listed(location, storage_factory)
            if not s3_files.keys:
                raise _no_history(location.rstrip("/"), "")
            source = f"{_PROTOCOL}://{HISTORY_PREFIX}*/*/*.jsonl.gz"
            connection.register_filesystem(s3_files.filesystem())
        else:
            source = _local_source(Path(location))
        connection.execute(_view_sql(source))
        try:
            result = connection.execute(sql)
            columns = [column[0] for column in result.description or []]
            rows = result.fetchall()
        except duckdb.Error as exc:
            if s3_files is not None and s3_files.failure is not None:
                raise s3_files.failure from None
            raise _translated(exc) from None
    finally:
        connection.close()
    if s3_files is None:
        return QueryResult(columns, rows)
    return QueryResult(columns, rows, len(set(s3_files.fetched)), len(s3_files.keys))


def _checked_statements(sql: str) -> None:
    """Usage errors before anything runs: no statement at all (``;``, a comment alone), or
    an extension INSTALL/LOAD (nothing is downloaded or loaded: the JSON reader is built in)."""
    import duckdb

    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise _translated(exc) from None
    if not statements:
        raise ConfigurationError(
            "the SQL holds no statement: give the SQL to run (or the name of a named query: "
            "achieveit-sync query --list)"
        )
    if any(statement.type == duckdb.StatementType.LOAD for statement in statements):
        raise ConfigurationError(
            "INSTALL and LOAD are refused: achieveit-sync query downloads and loads no DuckDB "
            "extension (plan_item_history needs none)"
        )


def _no_history(where: str, hint: str) -> ConfigurationError:
    return ConfigurationError(
        f"no plan history under {where} (expected {where}/history/snapshot_date=.../plan_id=..."
        f"/*.jsonl.gz){hint}: give the folder an export wrote (its --out) or the backups "
        "bucket, s3://bucket[/prefix]; a complete backup writes the history"
    )


def _local_source(root: Path) -> str:
    if not root.is_dir():
        what = "does not exist" if not root.exists() else "is not a folder"
        raise ConfigurationError(
            f"{str(root)!r} {what}: give the folder an export wrote (its --out, which holds "
            "history/), or the backups bucket as s3://bucket"
        )
    history = root / HISTORY_PREFIX
    if not any(history.glob("*/*/*.jsonl.gz")):
        inside = root.name == HISTORY_PREFIX.strip("/") or any(root.glob("snapshot_date=*"))
        hint = f" (it looks like history/ itself: give --backups {root.parent})" if inside else ""
        raise _no_history(str(root).rstrip("/"), hint)
    return (history / "*" / "*" / "*.jsonl.gz").as_posix()


def _view_sql(source: str) -> str:
    """``plan_item_history`` over ``source`` (a glob)."""
    names = ", ".join(name for name, _ in HISTORY_COLUMNS)
    columns = ", ".join(
        f"'{name}': '{_DUCKDB_TYPES[kind]}'"
        for name, kind in HISTORY_COLUMNS
        if name not in PATH_PARTITIONS
    )
    partitions = ", ".join(f"'{name}': 'VARCHAR'" for name in PATH_PARTITIONS)
    # The names and types are ours and the path is quoted: nothing here comes from the query.
    return (
        f"CREATE VIEW {TABLE} AS SELECT {names} FROM read_json({_quoted(source)}, "  # noqa: S608
        "format = 'newline_delimited', compression = 'gzip', hive_partitioning = true, "
        f"hive_types = {{{partitions}}}, columns = {{{columns}}})"
    )


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


_USAGE_ERRORS = ("ParserException", "BinderException", "CatalogException", "SyntaxException")


def _translated(exc: Exception) -> AchieveItSyncError:
    message = " ".join(str(exc).split())
    if "Required module 'pytz'" in message:
        return ConfigurationError(
            "a TIMESTAMP WITH TIME ZONE result needs pytz: pip install 'achieveit-sync[query]'"
        )
    if type(exc).__name__ in _USAGE_ERRORS:
        return ConfigurationError(f"the SQL was refused: {message}")
    return QueryDataError(f"the query failed: {message}")


@dataclass
class _HistoryFiles:
    """The history files under an S3 location, listed once; fetched one by one, when DuckDB
    opens them (after its hive partition pruning)."""

    storage: S3Storage
    bucket: str
    prefix: str
    keys: dict[str, int]
    """Key (below ``prefix``) -> size."""
    fetched: list[str] = field(default_factory=list)
    failure: Exception | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def listed(cls, location: str, storage_factory: Any) -> _HistoryFiles:
        from achieveit_sync.storage import default_storage, parse_s3_location

        bucket, prefix = parse_s3_location(location)
        if not bucket:
            raise ConfigurationError(f"{location!r} names no bucket: write it s3://bucket/prefix")
        storage = (storage_factory or default_storage)()
        keys = {
            key.removeprefix(prefix): size
            for key, size in storage.list_sizes(bucket, prefix + HISTORY_PREFIX)
            if key.endswith(".jsonl.gz") and key.removeprefix(prefix).count("/") == 3
        }
        return cls(storage, bucket, prefix, keys)

    def fetch(self, key: str) -> bytes:
        try:
            data = self.storage.get_bytes(
                self.bucket, self.prefix + key, denied_means_missing=False
            )
        except Exception as exc:
            with self._lock:
                self.failure = self.failure or exc
            raise
        with self._lock:
            self.fetched.append(key)
        return data

    def filesystem(self) -> Any:
        """An fsspec file system over these files, for ``register_filesystem``."""
        from fsspec.spec import AbstractFileSystem

        files = self

        class HistoryFileSystem(AbstractFileSystem):  # type: ignore[misc]
            protocol = _PROTOCOL
            root_marker = ""

            def ls(self, path: str, detail: bool = True, **_: Any) -> list[Any]:
                folder = self._strip_protocol(path).strip("/")
                entries = dict(_children(files.keys, folder))
                listed = [
                    {"name": name, "size": size, "type": kind}
                    for name, (kind, size) in sorted(entries.items())
                ]
                return listed if detail else [entry["name"] for entry in listed]

            def _open(self, path: str, mode: str = "rb", **_: Any) -> io.BytesIO:
                return io.BytesIO(files.fetch(self._strip_protocol(path).strip("/")))

        return HistoryFileSystem(skip_instance_cache=True)


def _children(keys: dict[str, int], folder: str) -> Iterator[tuple[str, tuple[str, int]]]:
    """The entries directly in ``folder``: (path, (kind, size))."""
    start = folder + "/" if folder else ""
    for key, size in keys.items():
        if not key.startswith(start):
            continue
        first, slash, _ = key.removeprefix(start).partition("/")
        yield (start + first, ("directory", 0) if slash else ("file", size))


# -- output -----------------------------------------------------------------------------


def as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def as_json_value(value: Any) -> Any:
    """``value`` as strict JSON (RFC 8259 has no NaN or Infinity: they become the strings
    "NaN", "Infinity", "-Infinity", as elsewhere in this package)."""
    converted: Any
    if isinstance(value, float) and not math.isfinite(value):
        converted = "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    elif isinstance(value, datetime | date):
        converted = value.isoformat()
    elif isinstance(value, Decimal):
        converted = as_json_value(float(value))
    elif isinstance(value, list | tuple):
        converted = [as_json_value(v) for v in value]
    elif isinstance(value, dict):
        converted = {str(k): as_json_value(v) for k, v in value.items()}
    elif isinstance(value, str | int | float | bool) or value is None:
        converted = value
    else:
        converted = str(value)
    return converted


def format_result(result: QueryResult, output_format: str) -> str:
    if output_format == "json":
        records = [
            {
                column: as_json_value(value)
                for column, value in zip(result.columns, row, strict=True)
            }
            for row in result.rows
        ]
        return json.dumps(records, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    if output_format == "csv":
        # Formula-like cells (an item named "=HYPERLINK(...)") are neutralised with "'" as
        # in every CSV this package writes (achieveit_sync.spreadsheet).
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow([neutralise(column) for column in result.columns])
        writer.writerows([neutralise(as_text(value)) for value in row] for row in result.rows)
        return buffer.getvalue()
    return _table(result.columns, [[as_text(v) for v in row] for row in result.rows])


def _table(columns: Sequence[str], rows: list[list[str]]) -> str:
    if not columns:
        return "(no columns)\n"
    shown = [[" ".join(cell.split()) for cell in row] for row in rows]
    widths = [len(column) for column in columns]
    for row in shown:
        widths = [max(width, min(len(cell), 60)) for width, cell in zip(widths, row, strict=True)]

    def line(cells: Sequence[str]) -> str:
        clipped = [
            c if len(c) <= w else c[: w - 3] + "..." for c, w in zip(cells, widths, strict=True)
        ]
        return "  ".join(c.ljust(w) for c, w in zip(clipped, widths, strict=True)).rstrip() + "\n"

    text = line(columns) + line(["-" * w for w in widths])
    text += "".join(line(row) for row in shown)
    count = len(rows)
    return text + f"({count} row{'' if count == 1 else 's'})\n"
