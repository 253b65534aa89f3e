"""The AchieveIt API key: a value that cannot leak, and where it comes from.

``ApiKey`` wraps the secret so that ``str``, ``repr``, f-strings, logging and tracebacks show
``ApiKey('********')``; only ``reveal()`` gives the value, and the client calls it in exactly
one place (the ``Authorization`` header). Providers hand out keys and can fetch a fresh one
when the API answers 401, so a rotated key works without a redeploy.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import TYPE_CHECKING, Any, Protocol

from achieveit_sync.errors import AchieveItSyncError, ConfigurationError, SecretUnavailableError

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

REDACTED = "********"
_SHORTEST_SCRUBBED = 8
_LONGEST_KEY = 1024
"""Far above any real key, far below what HTTP servers take in one header (8 KB)."""
_FRAGMENT = 12
"""A run of this many characters of the key, echoed in clear, is blanked too: a server that
cuts what it echoes must not leak the key's first half."""
PLACEHOLDER = "REPLACE_WITH_YOUR_ACHIEVEIT_API_KEY"
"""What the template puts in a secret it creates, until someone sets the real key."""


class ApiKey:
    """An API key that never shows its value by accident.

    Only printable ASCII is accepted: the key travels in an HTTP header, which Python writes
    as Latin-1, and a pasted curly quote would otherwise fail while the request is being
    written, after work was marked as sent.
    """

    __slots__ = ("_fragments", "_pattern", "_value")

    def __init__(self, value: str) -> None:
        value = value.strip()
        if not value:
            raise ConfigurationError("the AchieveIt API key is empty")
        if any(ch.isspace() for ch in value):
            raise ConfigurationError(
                "the AchieveIt API key contains white space; paste the key alone, "
                "without the 'API-KEY' prefix"
            )
        for position, ch in enumerate(value, start=1):
            if not (ch.isascii() and ch.isprintable()):
                # The position, never the character or the key: both belong to the secret.
                raise ConfigurationError(
                    f"the AchieveIt API key contains a character that is not printable ASCII "
                    f"(at position {position}); copy the key again as plain text, without "
                    "typographic quotes or other characters an editor may have added"
                )
        if len(value) > _LONGEST_KEY:
            raise ConfigurationError(
                f"the AchieveIt API key is {len(value):,} characters long, far longer than a "
                "key: check that the setting or secret holds the key alone"
            )
        self._value = value
        self._pattern: re.Pattern[str] | None = None
        self._fragments: dict[str, list[int]] | None = None

    def reveal(self) -> str:
        """The key itself. Only the HTTP boundary calls this."""
        return self._value

    def fingerprint(self) -> str:
        """Which key this is, without being it: a SHA-256 digest, so that progress recorded
        for one organisation's key is never taken for another's."""
        return hashlib.sha256(
            b"achieveit-sync key fingerprint\n" + self._value.encode()
        ).hexdigest()[:16]

    def scrub(self, text: str) -> str:
        """``text`` with the key blanked wherever it appears: as is, JSON-escaped (``\\/``,
        ``\\u002B``) or percent-encoded (``%2B``), in any mixture, as a server echoing the
        request could write it."""
        if len(self._value) < _SHORTEST_SCRUBBED:
            # Blanking a two-letter "key" would blank ordinary words in every message;
            # AchieveIt's keys are far longer, and the sandbox's and tests' are too.
            return text
        if self._pattern is None:
            self._pattern = _echo_pattern(self._value)
        return self._blank_fragments(self._pattern.sub(REDACTED, text))

    def _blank_fragments(self, text: str) -> str:
        """Runs of at least ``_FRAGMENT`` characters of the key (a cut echo), blanked.

        Every such run holds one of the key's aligned chunks of ``_FRAGMENT // 2``
        characters, so only those are searched for (``str.find``, in C): a 32 MB answer
        costs milliseconds, not a Python step per character."""
        key = self._value
        if len(key) < _FRAGMENT or len(text) < _FRAGMENT:
            return text
        if self._fragments is None:
            self._fragments = _aligned_chunks(key, _FRAGMENT // 2)
        spans: list[tuple[int, int]] = []
        for chunk, offsets in self._fragments.items():
            found = text.find(chunk)
            while found != -1:
                for offset in offsets:
                    spans.append(_echo_around(text, key, found, offset, len(chunk)))
                found = text.find(chunk, found + 1)
        spans = sorted(span for span in spans if span[1] - span[0] >= _FRAGMENT)
        if not spans:
            return text
        pieces, position = [], 0
        for start, end in spans:
            if end <= position:
                continue
            pieces += [text[position : max(start, position)], REDACTED]
            position = end
        return "".join([*pieces, text[position:]])

    def __repr__(self) -> str:
        return f"ApiKey('{REDACTED}')"

    __str__ = __repr__

    def __format__(self, format_spec: str) -> str:
        return repr(self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ApiKey) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> Any:
        # Pickling would write the key in clear into caches and queues.
        raise TypeError("ApiKey cannot be pickled")


def _aligned_chunks(key: str, size: int) -> dict[str, list[int]]:
    """The key's chunks of ``size`` characters at offsets 0, size, 2*size, ..., by text."""
    chunks: dict[str, list[int]] = {}
    for offset in range(0, len(key) - size + 1, size):
        chunks.setdefault(key[offset : offset + size], []).append(offset)
    return chunks


def _echo_around(text: str, key: str, found: int, offset: int, size: int) -> tuple[int, int]:
    """The span of ``text`` around a chunk found at ``found`` that matches the key around
    that chunk's ``offset``."""
    before = 0
    while before < min(found, offset) and text[found - before - 1] == key[offset - before - 1]:
        before += 1
    after = 0
    limit = min(len(text) - found - size, len(key) - offset - size)
    while after < limit and text[found + size + after] == key[offset + size + after]:
        after += 1
    return found - before, found + size + after


def _echo_pattern(value: str) -> re.Pattern[str]:
    forms_per_character = []
    for ch in value:
        code = ord(ch)
        forms = [re.escape(ch), rf"\\u{code:04x}", f"%{code:02x}"]
        if ch in '/"\\':
            forms.append(re.escape("\\" + ch))  # JSON's two-character escapes
        forms_per_character.append("(?:" + "|".join(forms) + ")")
    # Case-insensitive for the hex digits; blanking a case variant of the key is harmless.
    return re.compile("".join(forms_per_character), re.IGNORECASE)


class ApiKeyProvider(Protocol):
    """Something that hands out the current key, and a fresh one on request."""

    def current(self) -> ApiKey:
        """The key to use now (may be cached)."""
        ...

    def refresh(self) -> ApiKey | None:
        """Fetch the key again, bypassing caches; ``None`` when there is nothing newer."""
        ...


class StaticApiKey:
    """A key given directly (tests, the CLI with ``ACHIEVEIT_API_KEY``)."""

    def __init__(self, key: ApiKey | str) -> None:
        self._key = key if isinstance(key, ApiKey) else ApiKey(key)

    def current(self) -> ApiKey:
        return self._key

    def refresh(self) -> ApiKey | None:
        return None

    def __repr__(self) -> str:
        return f"StaticApiKey({self._key!r})"


class SecretsManagerApiKey:
    """The key read from AWS Secrets Manager through Powertools Parameters, with a cache.

    The secret holds either the key as a plain string or JSON with an ``apiKey`` field.
    ``max_age_seconds`` bounds how long a cached value is used; ``refresh()`` forces a
    fetch, which the client does once after a 401 (the key may have been rotated).
    """

    def __init__(
        self,
        secret_id: str,
        *,
        max_age_seconds: int = 300,
        secrets_client: SecretsManagerClient | None = None,
        region: str | None = None,
    ) -> None:
        if not secret_id:
            raise ConfigurationError("the API key secret id is empty")
        # Imported here so that importing this module stays cheap for code that never
        # reads a secret (the CLI's validate, unit tests).
        from aws_lambda_powertools.utilities.parameters import SecretsProvider

        self._secret_id = secret_id
        self._max_age_seconds = max_age_seconds
        if secrets_client is None and region is not None:
            import boto3

            secrets_client = boto3.client("secretsmanager", region_name=region)
        self._provider = SecretsProvider(boto3_client=secrets_client)
        self._last_key: ApiKey | None = None
        self._unusable = False
        """The cached secret was not a usable key: fetch afresh next time, so that a fixed
        secret works at once rather than after ``max_age_seconds``."""

    def current(self) -> ApiKey:
        return self._fetch(force=False)

    def refresh(self) -> ApiKey | None:
        previous = self._last_key
        fresh = self._fetch(force=True)
        return None if fresh == previous else fresh

    def _fetch(self, *, force: bool) -> ApiKey:
        from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

        try:
            raw = self._provider.get(
                self._secret_id,
                max_age=self._max_age_seconds,
                force_fetch=force or self._unusable,
            )
        except GetParameterError as exc:
            raise _secret_failure(self._secret_id, exc) from exc
        self._unusable = True
        text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else str(raw)
        key_text = _key_from_secret_text(text, self._secret_id)
        if key_text == PLACEHOLDER:
            raise ConfigurationError(
                f"the secret '{self._secret_id}' still holds the placeholder: set the key with "
                f"aws secretsmanager put-secret-value --secret-id {self._secret_id} "
                "--secret-string 'YOUR-KEY'"
            )
        try:
            key = ApiKey(key_text)
        except ConfigurationError as exc:
            raise ConfigurationError(f"the secret '{self._secret_id}': {exc}") from None
        self._unusable = False
        self._last_key = key
        return key

    def __repr__(self) -> str:
        return f"SecretsManagerApiKey(secret_id={self._secret_id!r})"


_AWS_FAILING_CODES = frozenset(
    {"ThrottlingException", "InternalServiceError", "InternalFailure", "ServiceUnavailable"}
)


def _secret_failure(secret_id: str, exc: Exception) -> AchieveItSyncError:
    """What reading the secret failed on, in our terms: Powertools wraps every error in a
    ``GetParameterError`` whose message carries the AWS error (never the value); the
    original is its context. Missing credentials are for the user to fix (configuration);
    an unreachable or failing Secrets Manager is for a later run (unavailable)."""
    from botocore.exceptions import (
        ClientError,
        HTTPClientError,
        NoCredentialsError,
        NoRegionError,
        PartialCredentialsError,
        ProfileNotFound,
    )
    from botocore.exceptions import ConnectionError as AwsConnectionError

    cause = exc.__cause__ or exc.__context__
    reading = f"cannot read the API key secret '{secret_id}'"
    if isinstance(cause, NoCredentialsError | PartialCredentialsError | ProfileNotFound):
        return ConfigurationError(
            f"{reading}: no usable AWS credentials ({cause}); set AWS_PROFILE, or "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or give the key itself in "
            "ACHIEVEIT_API_KEY)"
        )
    if isinstance(cause, NoRegionError):
        return ConfigurationError(f"{reading}: no AWS region; set AWS_REGION, or give the ARN")
    if isinstance(cause, AwsConnectionError | HTTPClientError):
        return SecretUnavailableError(
            f"{reading}: Secrets Manager cannot be reached ({cause}); check the network "
            "and the region, then run again"
        )
    if isinstance(cause, ClientError):
        code = cause.response.get("Error", {}).get("Code", "")
        status = cause.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code in _AWS_FAILING_CODES or status >= 500:
            return SecretUnavailableError(
                f"{reading}: Secrets Manager is failing ({code or status}); run again later"
            )
    return ConfigurationError(f"{reading}: {exc}")


def _key_from_secret_text(text: str, secret_id: str) -> str:
    stripped = text.strip()
    if not stripped.startswith("{"):
        return stripped
    try:
        document = json.loads(stripped)
    except json.JSONDecodeError as exc:
        # Say where, never what: the text is the secret.
        raise ConfigurationError(
            f"the secret '{secret_id}' starts with '{{' but is not valid JSON "
            f"(line {exc.lineno}, column {exc.colno}); store the key as plain text "
            'or as {"apiKey": "..."}'
        ) from None
    key = document.get("apiKey") if isinstance(document, dict) else None
    if not isinstance(key, str) or not key.strip():
        raise ConfigurationError(
            f"the secret '{secret_id}' is JSON without a non-empty string field 'apiKey'"
        )
    return key


class KeySource(Protocol):
    """Where a key comes from (``settings.ApiKeySettings`` is one): this module sits below
    the settings, so it names only the fields it reads."""

    @property
    def key(self) -> ApiKey | None: ...
    @property
    def secret_id(self) -> str | None: ...
    @property
    def max_age_seconds(self) -> int: ...
    @property
    def region(self) -> str | None: ...


def provider_for(settings: KeySource) -> ApiKeyProvider:
    """The key given directly, or read from the Secrets Manager secret the settings name."""
    if settings.key is not None:
        return StaticApiKey(settings.key)
    if settings.secret_id:
        return SecretsManagerApiKey(
            settings.secret_id, max_age_seconds=settings.max_age_seconds, region=settings.region
        )
    raise ConfigurationError("no API key: neither a key nor a secret is configured")
