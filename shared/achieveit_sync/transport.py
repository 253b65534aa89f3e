"""The HTTPS plumbing under the AchieveIt client: a session whose every connection (the
tunnel behind ``HTTPS_PROXY`` included) uses one TLS context, TLS 1.2 at least, with the
system's trust plus an optional extra CA; bounded, deadline-aware reading of answers; and
what a failed connection says about whether the request may have arrived.

It knows nothing of the API (paths, statuses, keys): ``client.py`` builds on it, and the two
are the only code in this project that speaks HTTP.
"""

from __future__ import annotations

import contextlib
import ssl
import time
from collections.abc import Iterator
from typing import Any

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError

from achieveit_sync import __version__
from achieveit_sync.errors import ConfigurationError
from achieveit_sync.settings import ClientSettings

_DESCRIPTION_CHARS = 500


class TlsAdapter(HTTPAdapter):
    """An HTTPS adapter whose pools all use one SSLContext (TLS 1.2+, our trust)."""

    def __init__(self, ssl_context: ssl.SSLContext, pool_size: int) -> None:
        self._ssl_context = ssl_context
        # max_retries=0: our loop retries, because only it knows whether a POST is safe to
        # repeat. urllib3 still never re-sends a request that may have arrived.
        super().__init__(pool_connections=1, pool_maxsize=pool_size, max_retries=0)

    def init_poolmanager(
        self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any
    ) -> None:
        pool_kwargs["ssl_context"] = self._ssl_context
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        # Behind HTTPS_PROXY, requests builds a separate pool manager for the tunnel; without
        # this it would use a default context: no extra CA, the library's TLS minimum.
        proxy_kwargs["ssl_context"] = self._ssl_context
        return super().proxy_manager_for(proxy, **proxy_kwargs)


def build_ssl_context(ca_bundle: str | None = None) -> ssl.SSLContext:
    """The client's TLS context: system trust, plus ``ca_bundle``; TLS 1.2 at least."""
    context = ssl.create_default_context()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if ca_bundle:
        try:
            context.load_verify_locations(cafile=ca_bundle)
        except (ssl.SSLError, OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or exc
            raise ConfigurationError(
                f"ACHIEVEIT_CA_BUNDLE: '{ca_bundle}' holds no certificate that can be loaded "
                f"({reason}); give the CA certificate as PEM text (-----BEGIN CERTIFICATE-----)"
            ) from None
    return context


def build_session(settings: ClientSettings, pool_size: int) -> requests.Session:
    session = requests.Session()
    context = build_ssl_context(str(settings.ca_bundle) if settings.ca_bundle else None)
    session.mount("https://", TlsAdapter(context, pool_size))
    # Nothing may ever be sent in clear: an http:// URL has no adapter at all.
    session.adapters.pop("http://", None)
    session.headers["User-Agent"] = f"achieveit-sync/{__version__}"
    session.headers["Accept"] = "application/json, text/plain;q=0.9, */*;q=0.1"
    return session


class UndecodableAnswerError(Exception):
    """A successful answer whose bytes are not text in the charset it names (UTF-8 when it
    names none): read strictly, it is refused rather than altered."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class AnswerTooSlowError(Exception):
    """The answer did not arrive whole by its deadline."""


def read_text(
    response: requests.Response,
    limit: int,
    *,
    tail_guard: int = 0,
    strict: bool = False,
    answer_by: float | None = None,
    read_timeout: float = 60.0,
) -> tuple[str, bool]:
    """The body as text, cut after ``limit`` bytes (a runaway body must not fill memory).

    A cut body also loses its last ``tail_guard`` characters: the cut may have split an
    echoed key, and a key's first half is no less secret than the whole.

    ``strict``: a 2xx body is decoded with the charset its Content-Type names, else UTF-8
    (what JSON is, RFC 8259), and bytes that do not decode raise ``UndecodableAnswerError``
    instead of becoming U+FFFD. Other answers (and a cut body, refused anyway) are read
    leniently: they only end up in messages.

    ``answer_by`` (``time.monotonic()``): the body must have arrived whole by then, else
    ``AnswerTooSlowError``. It is read as it comes (``read1``), checking the clock between
    reads, each read waiting at most until ``answer_by``."""
    raw = bytearray()
    cut = False
    try:
        chunks = (
            response.iter_content(chunk_size=64 * 1024)
            if answer_by is None
            else _chunks_by(response, answer_by, read_timeout)
        )
        for chunk in chunks:
            raw.extend(chunk)
            if len(raw) > limit:
                del raw[limit:]
                cut = True
                break
    finally:
        response.close()
    if strict and not cut and 200 <= response.status_code < 300:
        text = _decode_strictly(bytes(raw), response.headers.get("Content-Type", ""))
    else:
        text = raw.decode(response.encoding or "utf-8", errors="replace")
    if cut and tail_guard:
        text = text[:-tail_guard] + " [cut]"
    return text, cut


def _chunks_by(
    response: requests.Response, answer_by: float, read_timeout: float
) -> Iterator[bytes]:
    """The body's (decoded) bytes as they arrive; ``AnswerTooSlowError`` past ``answer_by``.

    ``iter_content`` cannot be used: it blocks until a whole chunk has arrived, however
    slowly its bytes come. Errors are translated as ``iter_content`` translates them."""
    stream = response.raw
    connection = getattr(stream, "_connection", None)
    sock = getattr(connection, "sock", None)
    while True:
        left = answer_by - time.monotonic()
        if left <= 0:
            raise AnswerTooSlowError
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.settimeout(min(read_timeout, left))
        try:
            chunk = stream.read1(64 * 1024, decode_content=True)
        except urllib3.exceptions.ReadTimeoutError:
            if time.monotonic() >= answer_by:
                raise AnswerTooSlowError from None
            raise requests.exceptions.ConnectionError("read timed out") from None
        except urllib3.exceptions.SSLError as exc:
            raise requests.exceptions.SSLError(exc) from None
        except urllib3.exceptions.DecodeError as exc:
            raise requests.exceptions.ContentDecodingError(exc) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise requests.exceptions.ConnectionError(exc) from None
        if not chunk:
            return
        yield chunk


def _decode_strictly(raw: bytes, content_type: str) -> str:
    charset = _declared_charset(content_type)
    try:
        return raw.decode(charset or "utf-8")
    except LookupError:
        raise UndecodableAnswerError(
            f"the answer names a charset this client does not know ({charset[:40]!a})"
        ) from None
    except UnicodeDecodeError as exc:
        named = f"is not valid {charset}" if charset else "is not UTF-8 and names no charset"
        raise UndecodableAnswerError(
            f"the answer {named} (byte 0x{raw[exc.start]:02X} at offset {exc.start:,}); it is "
            "refused rather than altered (ask AchieveIt support: JSON is UTF-8)"
        ) from None


def _declared_charset(content_type: str) -> str:
    """The ``charset`` parameter of a Content-Type header, or ``""``."""
    for parameter in content_type.split(";")[1:]:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip("\"'").lower()
    return ""


def request_may_have_arrived(exc: requests.exceptions.RequestException) -> bool:
    """False only when the connection provably never carried the request."""
    if isinstance(exc, requests.exceptions.ConnectTimeout | requests.exceptions.ProxyError):
        # A proxy that cannot be reached, or refuses the tunnel (407): the request was
        # never written to AchieveIt's connection.
        return False
    if isinstance(exc, requests.exceptions.ConnectionError):
        reason = exc.args[0] if exc.args else None
        if isinstance(reason, MaxRetryError):
            reason = reason.reason
        # NewConnectionError and NameResolutionError are ConnectTimeoutError subclasses.
        return not isinstance(reason, ConnectTimeoutError)
    return True


def describe_transport_error(exc: requests.exceptions.RequestException) -> str:
    reason: object = exc.args[0] if exc.args else exc
    if isinstance(reason, MaxRetryError) and reason.reason is not None:
        reason = reason.reason
    return f"{type(exc).__name__}: {reason}"[:_DESCRIPTION_CHARS]
