"""Every setting achieveit-sync takes from its environment, and the only module that reads it.

One typed, frozen model per reader: ``ClientSettings`` (how to reach AchieveIt),
``ApiKeySettings`` (where the key comes from), ``IngestSettings`` and ``BackupSettings`` (the
two Lambdas), ``CliSettings`` (the command line) and ``ObservabilitySettings``. Each is built
once, by ``from_env``, with field parsers shared by all: a bad value fails at start-up with
a message naming the variable and the values it accepts, instead of surfacing later as a
confusing HTTP or AWS error.

``VARIABLES`` documents every variable; the README's configuration table is that list
(``python -m achieveit_sync.settings`` prints it, and a test holds the two together).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from achieveit_sync.errors import ConfigurationError
from achieveit_sync.updates import BodyFormat

if TYPE_CHECKING:
    from achieveit_sync.api_key import ApiKey

COMMERCIAL_BASE_URL = "https://api.achieveit.com"
GOVERNMENT_BASE_URL = "https://gov-api.achieveit.com"

ENV_BASE_URL = "ACHIEVEIT_BASE_URL"
ENV_API_KEY = "ACHIEVEIT_API_KEY"
ENV_API_KEY_SECRET = "ACHIEVEIT_API_KEY_SECRET"  # noqa: S105 - a variable name
ENV_SECRET_MAX_AGE = "ACHIEVEIT_SECRET_MAX_AGE_SECONDS"  # noqa: S105 - a variable name
ENV_CA_BUNDLE = "ACHIEVEIT_CA_BUNDLE"

DEFAULT_BATCH_SIZE = 500
DEFAULT_MAX_ROWS = 1_000_000
DEFAULT_MAX_LINES = 2_000_000
DEFAULT_MAX_BYTES = 512 * 1024**2
DEFAULT_EXPIRATION_DAYS = 400
DEFAULT_BACKUP_MAX_ITEMS = 1_000_000
DEFAULT_NAMESPACE = "AchieveItSync"


@dataclass(frozen=True)
class Variable:
    """One documented environment variable (a row of the README's configuration table)."""

    names: tuple[str, ...]
    used_by: str
    meaning: str

    def row(self) -> str:
        names = ", ".join(f"`{name}`" for name in self.names)
        return f"| {names} | {self.used_by} | {self.meaning} |"


VARIABLES: tuple[Variable, ...] = (
    Variable(
        ("ACHIEVEIT_BASE_URL",),
        "all",
        "API base URL, HTTPS only (`https://api.achieveit.com`; government: "
        "`https://gov-api.achieveit.com`)",
    ),
    Variable(
        ("ACHIEVEIT_API_KEY_SECRET",),
        "Lambdas, CLI",
        'Secrets Manager secret holding the key (plain, or JSON `{"apiKey": ...}`)',
    ),
    Variable(("ACHIEVEIT_API_KEY",), "CLI", "the key itself (never set this on a Lambda)"),
    Variable(
        ("ACHIEVEIT_SECRET_MAX_AGE_SECONDS",),
        "all",
        "how long a fetched key is cached (300); a 401 refetches once",
    ),
    Variable(("ACHIEVEIT_CA_BUNDLE",), "all", "extra CA certificate to trust (none)"),
    Variable(
        ("ACHIEVEIT_CONNECT_TIMEOUT_SECONDS", "ACHIEVEIT_READ_TIMEOUT_SECONDS"),
        "all",
        "seconds to connect, and to wait for an answer (5, 60); an export page must arrive "
        "whole within the read timeout",
    ),
    Variable(("ACHIEVEIT_MAX_ATTEMPTS",), "all", "attempts per request, first included (5)"),
    Variable(
        ("HTTPS_PROXY", "NO_PROXY"),
        "all",
        "an egress proxy; the tunnel keeps the client's TLS settings (TLS 1.2+, "
        "`ACHIEVEIT_CA_BUNDLE`)",
    ),
    Variable(
        ("INGEST_QUEUE_URL", "IDEMPOTENCY_TABLE", "CHECKPOINT_TABLE", "NOTIFICATION_TOPIC_ARN"),
        "ingest",
        "set by the template",
    ),
    Variable(("INGEST_BATCH_SIZE",), "ingest", f"rows per request ({DEFAULT_BATCH_SIZE})"),
    Variable(("INGEST_BODY_FORMAT",), "ingest", "`json` or `csv` request bodies (json)"),
    Variable(
        ("INGEST_TIME_MARGIN_SECONDS",),
        "ingest",
        "stop and continue in a follow-up when less time remains (120)",
    ),
    Variable(
        ("INGEST_MAX_ROWS", "INGEST_MAX_LINES", "INGEST_MAX_BYTES"),
        "ingest, CLI",
        f"largest file accepted: data rows ({DEFAULT_MAX_ROWS:,}), lines with blank ones "
        f"({DEFAULT_MAX_LINES:,}), bytes of text after decompression ({DEFAULT_MAX_BYTES:,})",
    ),
    Variable(
        ("BACKUP_BUCKET", "PLAN_IDS"),
        "export",
        "set by the template (`PlanIds` parameter, comma-separated); the bucket's name alone "
        "(an ARN, an `s3://` URL or `bucket/prefix` is refused at start-up)",
    ),
    Variable(("BACKUP_TIME_ZONE",), "export", "IANA time zone recorded in manifests (UTC)"),
    Variable(
        ("BACKUP_EXPIRATION_DAYS",),
        "export",
        "the backups' lifecycle expiration, set by the template from `BackupExpirationDays` "
        f"({DEFAULT_EXPIRATION_DAYS}): unchanged data is reused for at most 30 days, or half "
        "of this",
    ),
    Variable(
        ("BACKUP_MAX_ITEMS",),
        "export, CLI",
        f"the most items a plan may have ({DEFAULT_BACKUP_MAX_ITEMS:,}): a plan whose "
        "`totalCount` says more, or that sends more, fails instead of being paged for hours",
    ),
    Variable(
        ("ACHIEVEIT_TRACING",),
        "Lambdas",
        "`true` patches boto3 and requests for X-Ray (the `EnableTracing` parameter)",
    ),
    Variable(
        ("POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "POWERTOOLS_LOG_LEVEL"),
        "Lambdas",
        f"Powertools (set by the template; the namespace defaults to {DEFAULT_NAMESPACE})",
    ),
    Variable(
        ("AWS_REGION", "AWS_DEFAULT_REGION"),
        "CLI",
        "the region of the secret (its ARN's, when it is an ARN), the buckets and the stack "
        "(else the profile's)",
    ),
    Variable(
        ("ACHIEVEIT_SYNC_STATE_DIR",),
        "CLI",
        "where `publish` records its progress and the rows it sent to each server, so "
        "none is sent twice (`$XDG_STATE_HOME/achieveit-sync`, else "
        "`~/.local/state/achieveit-sync`)",
    ),
    Variable(
        ("ACHIEVEIT_SYNC_DEBUG",),
        "CLI",
        "`1` shows an error's stack trace (for a bug report) instead of one line",
    ),
)


def configuration_table() -> str:
    """The README's configuration table, as markdown."""
    rows = ["| Variable | Used by | Meaning (default) |", "| --- | --- | --- |"]
    rows += [variable.row() for variable in VARIABLES]
    return "\n".join(rows) + "\n"


# -- field parsers: one variable each, errors that name it and what it takes ----------------


def environment(environ: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if environ is None else environ


def text(env: Mapping[str, str], name: str, default: str = "") -> str:
    return env.get(name, "").strip() or default


def required(env: Mapping[str, str], name: str) -> str:
    value = text(env, name)
    if not value:
        raise ConfigurationError(f"{name} is not set (see template.yaml)")
    return value


def whole_number(
    env: Mapping[str, str], name: str, default: int, *, minimum: int = 1, unit: str = ""
) -> int:
    raw = text(env, name) or str(default)
    if not (raw.isascii() and raw.isdigit()) or int(raw) < minimum:
        what = f"a whole number{f' of {unit}' if unit else ''} of {minimum} or more"
        raise ConfigurationError(f"{name} must be {what}, got '{raw}'")
    return int(raw)


def seconds(env: Mapping[str, str], name: str, default: float) -> float:
    raw = text(env, name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a number of seconds, got '{raw}'") from None
    if not math.isfinite(value) or value <= 0:
        raise ConfigurationError(f"{name} must be a positive number of seconds, got '{raw}'")
    return value


def choice(env: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    value = text(env, name, default).lower()
    if value not in choices:
        raise ConfigurationError(f"{name} must be {' or '.join(choices)}, got '{value}'")
    return value


def flag(env: Mapping[str, str], name: str) -> bool:
    return choice(env, name, "false", ("true", "false", "1", "0", "yes", "no")) in (
        "true",
        "1",
        "yes",
    )


_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_IP_ADDRESS = re.compile(r"\d+\.\d+\.\d+\.\d+")
_RESERVED_BUCKET_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_RESERVED_BUCKET_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")


def bucket_name_problem(value: str) -> str | None:
    """Why ``value`` is not a general purpose S3 bucket name (S3's naming rules), or None."""
    if value.lower().startswith(("arn:", "s3:")) or "/" in value:
        return "give the bucket's name alone, not an ARN, an s3:// URL or a path"
    if not _BUCKET_NAME.fullmatch(value):
        return (
            "a bucket name is 3 to 63 lower-case letters, digits, dots and hyphens, starting "
            "and ending with a letter or a digit"
        )
    if ".." in value or _IP_ADDRESS.fullmatch(value):
        return "a bucket name has no two dots in a row and is not an IP address"
    if value.startswith(_RESERVED_BUCKET_PREFIXES) or value.endswith(_RESERVED_BUCKET_SUFFIXES):
        return "that prefix or suffix is reserved by S3"
    return None


def bucket(env: Mapping[str, str], name: str) -> str:
    """A required S3 bucket name, checked against S3's naming rules before any request."""
    value = required(env, name)
    problem = bucket_name_problem(value)
    if problem is not None:
        shown = ascii(value[:80]) + ("..." if len(value) > 80 else "")
        raise ConfigurationError(f"{name} {shown} is not an S3 bucket name: {problem}")
    return value


def time_zone(env: Mapping[str, str], name: str, default: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    value = text(env, name, default)
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigurationError(
            f"{name} '{value}' is not an IANA time zone (e.g. America/Chicago)"
        ) from None
    return value


# -- the models -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RetrySettings:
    """How hard the client tries before giving up on a transient failure.

    ``max_attempts`` counts the first try. Waits grow as ``backoff_base * 2**n`` up to
    ``backoff_cap`` with full jitter; a server's ``Retry-After`` replaces the computed wait
    but is never honoured beyond ``max_retry_after`` (a longer wait is better left to the
    caller, e.g. SQS redelivery, than spent sleeping inside a Lambda).
    """

    max_attempts: int = 5
    backoff_base: float = 0.5
    backoff_cap: float = 20.0
    max_retry_after: float = 60.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ConfigurationError(f"max_attempts must be at least 1, got {self.max_attempts}")
        for name in ("backoff_base", "backoff_cap", "max_retry_after"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ConfigurationError(f"{name} must be a non-negative number, got {value}")


@dataclass(frozen=True, slots=True)
class ClientSettings:
    """Where and how to reach AchieveIt. The key itself is not here: see ``ApiKeySettings``."""

    base_url: str = COMMERCIAL_BASE_URL
    ca_bundle: Path | None = None
    connect_timeout: float = 5.0
    read_timeout: float = 60.0
    retry: RetrySettings = field(default_factory=RetrySettings)

    def __post_init__(self) -> None:
        object.__setattr__(self, "base_url", normalise_base_url(self.base_url))
        for name in ("connect_timeout", "read_timeout"):
            value = getattr(self, name)
            if not math.isfinite(value) or value <= 0:
                raise ConfigurationError(f"{name} must be a positive number of seconds")
        if self.ca_bundle is not None and not self.ca_bundle.is_file():
            raise ConfigurationError(
                f"{ENV_CA_BUNDLE}: the CA bundle '{self.ca_bundle}' does not exist or is not a file"
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ClientSettings:
        env = environment(environ)
        ca_bundle = text(env, ENV_CA_BUNDLE)
        return cls(
            base_url=text(env, ENV_BASE_URL, COMMERCIAL_BASE_URL),
            ca_bundle=Path(ca_bundle) if ca_bundle else None,
            connect_timeout=seconds(env, "ACHIEVEIT_CONNECT_TIMEOUT_SECONDS", 5.0),
            read_timeout=seconds(env, "ACHIEVEIT_READ_TIMEOUT_SECONDS", 60.0),
            retry=RetrySettings(max_attempts=whole_number(env, "ACHIEVEIT_MAX_ATTEMPTS", 5)),
        )


@dataclass(frozen=True)
class ApiKeySettings:
    """Where the key comes from: given directly (``ACHIEVEIT_API_KEY``, the command line)
    or read from Secrets Manager (``ACHIEVEIT_API_KEY_SECRET``, cached for
    ``max_age_seconds``). The key wins when both are set."""

    key: ApiKey | None = None
    secret_id: str | None = None
    max_age_seconds: int = 300
    region: str | None = None
    """The secret's region: the one its ARN names, else ``AWS_REGION`` (boto3 itself reads
    only ``AWS_DEFAULT_REGION``), else boto3's own choice (the profile)."""

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, secret_only: bool = False
    ) -> ApiKeySettings:
        """``secret_only``: a Lambda, which must never take the key from its environment."""
        from achieveit_sync.api_key import ApiKey

        env = environment(environ)
        max_age = whole_number(env, ENV_SECRET_MAX_AGE, 300, minimum=0, unit="seconds")
        if secret_only:
            secret_id = required(env, ENV_API_KEY_SECRET)
            return cls(
                secret_id=secret_id,
                max_age_seconds=max_age,
                region=_secret_region(secret_id) or aws_region(env),
            )
        key = text(env, ENV_API_KEY)
        if key:
            return cls(key=ApiKey(key), max_age_seconds=max_age)
        secret_id = text(env, ENV_API_KEY_SECRET)
        if secret_id:
            return cls(
                secret_id=secret_id,
                max_age_seconds=max_age,
                region=_secret_region(secret_id) or aws_region(env),
            )
        raise ConfigurationError(
            f"no API key: set {ENV_API_KEY} to the key, or {ENV_API_KEY_SECRET} to the "
            "Secrets Manager secret that holds it"
        )


def aws_region(environ: Mapping[str, str] | None = None) -> str | None:
    """``AWS_REGION`` (what Lambda, the AWS CLI and the SDKs of other languages read), else
    ``AWS_DEFAULT_REGION``; ``None`` leaves the choice to boto3 (the profile's region)."""
    env = environment(environ)
    return text(env, "AWS_REGION") or text(env, "AWS_DEFAULT_REGION") or None


def _secret_region(secret_id: str) -> str | None:
    """The region an ARN names (``arn:aws:secretsmanager:eu-west-2:...``); a secret's name
    alone names none."""
    parts = secret_id.split(":")
    if len(parts) >= 7 and parts[0] == "arn" and parts[2] == "secretsmanager" and parts[3]:
        return parts[3]
    return None


@dataclass(frozen=True)
class ReadBounds:
    """The largest file the ingest reads (``INGEST_MAX_*``)."""

    max_rows: int = DEFAULT_MAX_ROWS
    max_lines: int = DEFAULT_MAX_LINES
    max_bytes: int = DEFAULT_MAX_BYTES

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ReadBounds:
        env = environment(environ)
        return cls(
            max_rows=whole_number(env, "INGEST_MAX_ROWS", DEFAULT_MAX_ROWS),
            max_lines=whole_number(env, "INGEST_MAX_LINES", DEFAULT_MAX_LINES),
            max_bytes=whole_number(env, "INGEST_MAX_BYTES", DEFAULT_MAX_BYTES, unit="bytes"),
        )


@dataclass(frozen=True)
class ExportLimits:
    """How large a plan an export reads (``BACKUP_MAX_ITEMS``): the Lambda and the CLI."""

    max_items: int = DEFAULT_BACKUP_MAX_ITEMS

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ExportLimits:
        env = environment(environ)
        return cls(max_items=whole_number(env, "BACKUP_MAX_ITEMS", DEFAULT_BACKUP_MAX_ITEMS))


@dataclass(frozen=True)
class IngestSettings:
    """The ingest Lambda's configuration."""

    queue_url: str
    idempotency_table: str
    checkpoint_table: str
    api_key_secret: str
    client: ClientSettings
    notification_topic_arn: str | None = None
    batch_size: int = DEFAULT_BATCH_SIZE
    body_format: BodyFormat = BodyFormat.JSON
    time_margin_seconds: float = 120.0
    secret_max_age_seconds: int = 300
    idempotency_expiry_seconds: int = 7 * 86400
    bounds: ReadBounds = field(default_factory=ReadBounds)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> IngestSettings:
        env = environment(environ)
        api_key = ApiKeySettings.from_env(env, secret_only=True)
        return cls(
            queue_url=required(env, "INGEST_QUEUE_URL"),
            idempotency_table=required(env, "IDEMPOTENCY_TABLE"),
            checkpoint_table=required(env, "CHECKPOINT_TABLE"),
            api_key_secret=str(api_key.secret_id),
            client=ClientSettings.from_env(env),
            notification_topic_arn=text(env, "NOTIFICATION_TOPIC_ARN") or None,
            batch_size=whole_number(env, "INGEST_BATCH_SIZE", DEFAULT_BATCH_SIZE),
            body_format=BodyFormat(choice(env, "INGEST_BODY_FORMAT", "json", ("json", "csv"))),
            time_margin_seconds=float(
                whole_number(env, "INGEST_TIME_MARGIN_SECONDS", 120, unit="seconds")
            ),
            secret_max_age_seconds=api_key.max_age_seconds,
            bounds=ReadBounds.from_env(env),
        )


@dataclass(frozen=True)
class BackupSettings:
    """The export (backup) Lambda's configuration."""

    bucket: str
    plan_ids: tuple[str, ...]
    api_key_secret: str
    client: ClientSettings
    time_zone: str = "UTC"
    secret_max_age_seconds: int = 300
    expiration_days: int = DEFAULT_EXPIRATION_DAYS
    """The bucket's lifecycle expiration (``BackupExpirationDays``): bounds how old data an
    unchanged backup may point at (``run.reuse_window``)."""
    limits: ExportLimits = field(default_factory=ExportLimits)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> BackupSettings:
        env = environment(environ)
        backup_bucket = bucket(env, "BACKUP_BUCKET")
        api_key = ApiKeySettings.from_env(env, secret_only=True)
        return cls(
            bucket=backup_bucket,
            plan_ids=tuple(p.strip() for p in text(env, "PLAN_IDS").split(",") if p.strip()),
            api_key_secret=str(api_key.secret_id),
            client=ClientSettings.from_env(env),
            time_zone=time_zone(env, "BACKUP_TIME_ZONE", "UTC"),
            secret_max_age_seconds=api_key.max_age_seconds,
            expiration_days=whole_number(
                env, "BACKUP_EXPIRATION_DAYS", DEFAULT_EXPIRATION_DAYS, unit="days"
            ),
            limits=ExportLimits.from_env(env),
        )


@dataclass(frozen=True)
class CliSettings:
    """What the command line takes from its environment besides the client's settings."""

    state_dir: Path
    bounds: ReadBounds = field(default_factory=ReadBounds)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> CliSettings:
        env = environment(environ)
        state = text(env, "ACHIEVEIT_SYNC_STATE_DIR")
        if state:
            state_dir = Path(state).expanduser()
            if not state_dir.is_absolute():
                # A relative folder would keep another record of what was sent in every
                # folder the command runs from: rows would be sent twice.
                raise ConfigurationError(
                    f"ACHIEVEIT_SYNC_STATE_DIR must be an absolute path (or start with ~), "
                    f"got '{state}': a relative one is another folder wherever you run from"
                )
        else:
            base = text(env, "XDG_STATE_HOME")
            state_dir = (Path(base) if base else Path.home() / ".local" / "state") / (
                "achieveit-sync"
            )
        return cls(state_dir=state_dir, bounds=ReadBounds.from_env(env))


@dataclass(frozen=True)
class ObservabilitySettings:
    """Powertools and tracing for the Lambdas."""

    metrics_namespace: str = DEFAULT_NAMESPACE
    tracing: bool = False
    service_name: str | None = None
    """The metrics' ``service`` dimension and the logs' ``service`` key; the template makes
    it stack-specific (``STACK-NAME-ingest``) so that two stacks' alarms never mix."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ObservabilitySettings:
        env = environment(environ)
        return cls(
            metrics_namespace=text(env, "POWERTOOLS_METRICS_NAMESPACE", DEFAULT_NAMESPACE),
            tracing=flag(env, "ACHIEVEIT_TRACING"),
            service_name=text(env, "POWERTOOLS_SERVICE_NAME") or None,
        )


def debug_requested(environ: Mapping[str, str] | None = None) -> bool:
    """``ACHIEVEIT_SYNC_DEBUG``: read on its own, since it decides how a failure to read the
    other settings is shown."""
    return text(environment(environ), "ACHIEVEIT_SYNC_DEBUG") not in ("", "0", "false", "no")


def api_key_as_set(environ: Mapping[str, str] | None = None) -> str:
    """``ACHIEVEIT_API_KEY`` as set, usable or not: only to blank it from messages."""
    return text(environment(environ), ENV_API_KEY)


def normalise_base_url(url: str) -> str:
    """Check that ``url`` is an HTTPS origin and return it without a trailing slash."""
    parts = urlsplit(url.strip())
    if parts.scheme.lower() != "https":
        raise ConfigurationError(
            f"{ENV_BASE_URL} must be an https:// URL (AchieveIt accepts TLS 1.2+ only), got "
            f"'{url}'; use {COMMERCIAL_BASE_URL} or, in the government environment, "
            f"{GOVERNMENT_BASE_URL}"
        )
    if not parts.hostname:
        raise ConfigurationError(f"{ENV_BASE_URL} has no host name: '{url}'")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ConfigurationError(
            f"{ENV_BASE_URL} must be a plain origin such as {COMMERCIAL_BASE_URL}, without "
            "credentials, query or fragment"
        )
    if parts.path.rstrip("/").lower().endswith("/api"):
        raise ConfigurationError(
            f"{ENV_BASE_URL} is the server's origin, without /api: '{url}'; use "
            f"'{url.rstrip('/')[: -len('/api')]}' (the client adds /api/... to each request)"
        )
    try:
        port = parts.port
    except ValueError:
        raise ConfigurationError(
            f"{ENV_BASE_URL} has a port that is not a number: '{url}'"
        ) from None
    # One spelling per server: what the CLI recorded as sent is found again whichever way
    # the URL is written (host case, the default port, a trailing slash).
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    origin = host if port in (None, 443) else f"{host}:{port}"
    return f"https://{origin}{parts.path.rstrip('/')}"


if __name__ == "__main__":
    print(configuration_table(), end="")
