"""Typed, validated settings for the AchieveIt client, read from the environment once.

Every variable is optional except the key (``ACHIEVEIT_API_KEY`` or
``ACHIEVEIT_API_KEY_SECRET``). A bad value fails at start-up with a message that names the
variable and says what is expected, instead of surfacing as a confusing HTTP error later.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from achieveit_sync.errors import ConfigurationError

COMMERCIAL_BASE_URL = "https://api.achieveit.com"
GOVERNMENT_BASE_URL = "https://gov-api.achieveit.com"

ENV_BASE_URL = "ACHIEVEIT_BASE_URL"
ENV_API_KEY = "ACHIEVEIT_API_KEY"
ENV_API_KEY_SECRET = "ACHIEVEIT_API_KEY_SECRET"  # noqa: S105 - a variable name
ENV_CA_BUNDLE = "ACHIEVEIT_CA_BUNDLE"
ENV_CONNECT_TIMEOUT = "ACHIEVEIT_CONNECT_TIMEOUT_SECONDS"
ENV_READ_TIMEOUT = "ACHIEVEIT_READ_TIMEOUT_SECONDS"
ENV_MAX_ATTEMPTS = "ACHIEVEIT_MAX_ATTEMPTS"
ENV_SECRET_MAX_AGE = "ACHIEVEIT_SECRET_MAX_AGE_SECONDS"  # noqa: S105 - a variable name


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
    """Where and how to reach AchieveIt. The key itself is not a setting: see ``api_key``."""

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
        env = os.environ if environ is None else environ
        ca_bundle = env.get(ENV_CA_BUNDLE, "").strip()
        return cls(
            base_url=env.get(ENV_BASE_URL, "").strip() or COMMERCIAL_BASE_URL,
            ca_bundle=Path(ca_bundle) if ca_bundle else None,
            connect_timeout=_env_float(env, ENV_CONNECT_TIMEOUT, 5.0),
            read_timeout=_env_float(env, ENV_READ_TIMEOUT, 60.0),
            retry=RetrySettings(max_attempts=_env_int(env, ENV_MAX_ATTEMPTS, 5)),
        )


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
    return f"https://{parts.netloc}{parts.path.rstrip('/')}"


def _env_float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a number of seconds, got '{raw}'") from None
    if not math.isfinite(value) or value <= 0:
        raise ConfigurationError(f"{name} must be a positive number of seconds, got '{raw}'")
    return value


def _env_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a whole number, got '{raw}'") from None
    if value < 1:
        raise ConfigurationError(f"{name} must be at least 1, got '{raw}'")
    return value
