"""The AchieveIt REST API client: with its transport (``transport.py``), the only code in
this project that speaks HTTP.

What it guarantees, whatever the server does:

* HTTPS with TLS 1.2 or newer, verified against the system trust store plus an optional
  extra CA bundle (loaded into the adapter's own SSLContext, so ``REQUESTS_CA_BUNDLE`` in
  the environment can add trust but never replace it).
* ``Authorization: API-KEY <key>`` on every request; the key appears nowhere else.
* Every failure becomes one of ``errors.PermanentApiError`` (do not retry),
  ``errors.RetryableApiError`` (retried here with backoff, then given up) or
  ``errors.AmbiguousDeliveryError`` (a POST that may have been applied: never re-sent).
  ``ConfigurationError`` (no usable key) and ``UnsendableUpdatesError`` (a body that cannot
  be encoded) are raised only before anything was sent: nothing can have been applied.
* A submission is prepared (body encoded, checked) before it is sent, so that a caller can
  record "in flight" only once the bytes are ready to go (``prepare_submission``, then
  ``send_submission``).
* Any 2xx is success; the body is returned as text for reports, never interpreted, because
  what a successful submission returns is not documented. Every answer kept is scrubbed of
  the key in every form a server could echo it in.
* Behind an ``HTTPS_PROXY``, the tunnelled connection keeps the same TLS settings.
"""

from __future__ import annotations

import json
import logging
import math
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Self
from urllib.parse import quote

import requests

from achieveit_sync import exact_json
from achieveit_sync.api_key import ApiKey, ApiKeyProvider
from achieveit_sync.errors import (
    AccessDeniedError,
    AchieveItSyncError,
    AmbiguousDeliveryError,
    ApiError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    NotFoundError,
    OutOfTimeError,
    PermanentApiError,
    RetryableApiError,
    TransportSecurityError,
)
from achieveit_sync.plan_ids import check_plan_id
from achieveit_sync.retry import parse_retry_after, wait_before_retry
from achieveit_sync.settings import ClientSettings
from achieveit_sync.transport import (
    AnswerTooSlowError,
    UndecodableAnswerError,
    build_session,
    describe_transport_error,
    read_text,
    request_may_have_arrived,
)
from achieveit_sync.updates import (
    BodyFormat,
    Update,
    UpdateKind,
    encode_updates,
    kind_of,
)

log = logging.getLogger(__name__)

MAX_PAGE_SIZE = 1500
"""The export endpoint's documented maximum ``take``."""

DEFAULT_SORT_KEY = "sequenceId"
MAX_RESPONSE_TEXT = 64 * 1024
"""How much of a submission's response body is kept for reports."""
MAX_EXPORT_PAGE_BYTES = 32 * 1024 * 1024
"""The largest export page the client reads (1,500 ordinary items are ~2 MB). A larger page
is not parsed: ``backup.paging.iter_plan_pages`` asks for fewer items a page instead."""
MAX_EXPORT_PAGE_MEMORY = 160 * 1024 * 1024
"""The most memory one page may take while it is parsed, as ``page_memory_estimate``
reckons it (the text and the objects it becomes). With the text read at most
``MAX_EXPORT_PAGE_BYTES`` at a time, a page peaks at about 200 MB of a 512 MB function
(``bench/backup_page_bench.py``)."""

_MESSAGE_PREVIEW = 500


class SortDirection(StrEnum):
    ASC = "asc"
    DESC = "desc"


class UnsendableUpdatesError(AchieveItSyncError):
    """An update cannot be encoded into a request body (nothing was sent).

    ``index`` is the position of the first such update in the batch."""

    def __init__(self, index: int, reason: str) -> None:
        self.index = index
        self.reason = reason
        super().__init__(f"update {index + 1} of the batch cannot be encoded: {reason}")


@dataclass(frozen=True, slots=True)
class Submission:
    """A request ready to go: everything that could fail before sending has been done."""

    name: str
    kind: UpdateKind
    rows: int
    path: str
    operation: str
    body: bytes
    content_type: str


@dataclass(frozen=True, slots=True)
class SubmitResult:
    """A submission the API accepted (any 2xx)."""

    request_name: str
    rows: int
    status_code: int
    body: str
    """The response body as text (possibly empty; cut at ``MAX_RESPONSE_TEXT``)."""
    elapsed_seconds: float
    attempts: int


@dataclass(frozen=True, slots=True)
class ExportPage:
    """One page of a plan export."""

    plan_id: str
    skip: int
    take: int
    items: list[dict[str, Any]]
    total_count: int | None
    """The server's ``totalCount``; ``None`` when the response did not carry one."""
    body_bytes: int = 0
    """The size of the answer (UTF-8), to size the next request."""
    memory_estimate: int = 0
    """What parsing the answer took, as ``page_memory_estimate`` reckons it."""


class ExportPageTooLargeError(PermanentApiError):
    """An export page too large to parse safely; ask for fewer items a page."""


@dataclass
class RequestStats:
    """What this client did since the last ``take_stats()``: for per-invocation metrics."""

    attempts: int = 0
    failures: int = 0
    """Attempts that did not end in a 2xx answer (refusals, 429/5xx, transport errors)."""
    seconds: float = 0.0

    @property
    def average_latency_ms(self) -> float:
        return 1000 * self.seconds / self.attempts if self.attempts else 0.0


@dataclass(frozen=True, slots=True)
class _Response:
    status_code: int
    text: str
    attempts: int
    elapsed_seconds: float
    cut: bool = False
    """The body was longer than the reader's limit; ``text`` holds its start."""


class AchieveItClient:
    """Talks to one AchieveIt organisation. Reuse one instance: it keeps connections open.

    ``sleep`` and ``rng`` are injectable so that tests can observe backoff without waiting.
    """

    def __init__(
        self,
        settings: ClientSettings,
        api_key: ApiKeyProvider,
        *,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        pool_size: int = 4,
    ) -> None:
        self._settings = settings
        self._api_key = api_key
        self._sleep = sleep
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._session = build_session(settings, pool_size)
        self._stats = RequestStats()
        self._last_key: ApiKey | None = None

    @property
    def base_url(self) -> str:
        return self._settings.base_url

    def scrub(self, text: str) -> str:
        """``text`` without the key this client last used, in any encoding (for messages
        built from arbitrary errors)."""
        return self._last_key.scrub(text) if self._last_key is not None else text

    def take_stats(self) -> RequestStats:
        """The request statistics so far, and start counting afresh."""
        stats, self._stats = self._stats, RequestStats()
        return stats

    # -- public calls -------------------------------------------------------------------

    def submit_updates(
        self,
        name: str,
        updates: Sequence[Update],
        *,
        body_format: BodyFormat = BodyFormat.JSON,
    ) -> SubmitResult:
        """POST one batch of updates of a single kind; the kind picks the endpoint.

        Raises ``AmbiguousDeliveryError`` when the batch went out and no answer came back:
        re-sending it could apply every row twice, so the caller decides.
        """
        return self.send_submission(self.prepare_submission(name, updates, body_format))

    def prepare_submission(
        self, name: str, updates: Sequence[Update], body_format: BodyFormat = BodyFormat.JSON
    ) -> Submission:
        """Encode a batch for ``send_submission``; ``UnsendableUpdatesError`` names the
        first update that cannot be encoded. Nothing is sent."""
        _check_submission(name, len(updates))
        kind = kind_of(updates)
        try:
            body = encode_updates(updates, body_format)
        except (ValueError, TypeError, ArithmeticError, UnicodeError) as exc:
            raise _unsendable(updates, body_format, exc) from None
        return _submission(name, kind, len(updates), body, body_format)

    def prepare_json_submission(
        self, name: str, kind: UpdateKind, objects: Sequence[bytes]
    ) -> Submission:
        """``prepare_submission`` for updates already written as the JSON objects of a body
        (``encode_updates``' own bytes, one object each): nothing left to encode."""
        _check_submission(name, len(objects))
        body = b"[" + b",".join(objects) + b"]"
        return _submission(name, kind, len(objects), body, BodyFormat.JSON)

    def send_submission(self, submission: Submission) -> SubmitResult:
        """POST a prepared batch. ``AmbiguousDeliveryError`` when it went out and no answer
        came back; ``ConfigurationError`` (no usable key) only before anything was sent."""
        response = self._request(
            "POST",
            submission.path,
            operation=submission.operation,
            body=submission.body,
            content_type=submission.content_type,
        )
        return SubmitResult(
            request_name=submission.name,
            rows=submission.rows,
            status_code=response.status_code,
            body=response.text,
            elapsed_seconds=response.elapsed_seconds,
            attempts=response.attempts,
        )

    def export_page(
        self,
        plan_id: str,
        *,
        skip: int = 0,
        take: int = MAX_PAGE_SIZE,
        sort_key: str = DEFAULT_SORT_KEY,
        sort_direction: SortDirection = SortDirection.ASC,
        deadline: float | None = None,
    ) -> ExportPage:
        """GET one page of a plan's items (``GET /exports/plans/<planId>``).

        A page larger than ``MAX_EXPORT_PAGE_BYTES``, or one whose parsing would take more
        than ``MAX_EXPORT_PAGE_MEMORY``, raises ``ExportPageTooLargeError`` unparsed.

        Each attempt must deliver the whole page within the read timeout (not only each
        read: a server trickling bytes cannot hold it longer), and nothing runs past
        ``deadline`` (``time.monotonic()``; ``OutOfTimeError``).
        """
        check_plan_id(plan_id)
        if skip < 0:
            raise ValueError(f"skip must be 0 or more, got {skip}")
        if not 1 <= take <= MAX_PAGE_SIZE:
            raise ValueError(f"take must be between 1 and {MAX_PAGE_SIZE}, got {take}")
        operation = f"export of plan '{plan_id}'"
        response = self._request(
            "GET",
            f"/exports/plans/{quote(plan_id, safe='')}",
            operation=operation,
            params={
                "skip": str(skip),
                "take": str(take),
                "sortKey": sort_key,
                "sortDirection": sort_direction.value,
            },
            # One byte more than a page may hold, so that a page over the cap is told
            # apart from one exactly at it (the reader stops there and keeps what it read).
            body_limit=MAX_EXPORT_PAGE_BYTES + 1,
            # A page is backed up as it is: bytes that are not what the answer says (UTF-8
            # unless a charset is named) are refused, never replaced.
            strict_text=True,
            whole_answer_in_read_timeout=True,
            deadline=deadline,
        )
        text = response.text
        body_bytes = utf8_length(text)
        if response.cut or body_bytes > MAX_EXPORT_PAGE_BYTES:
            raise ExportPageTooLargeError(
                operation,
                f"the page of {take} item(s) at skip={skip} is larger than "
                f"{_megabytes(MAX_EXPORT_PAGE_BYTES)}",
            )
        memory_estimate = page_memory_estimate(text)
        if memory_estimate > MAX_EXPORT_PAGE_MEMORY:
            raise ExportPageTooLargeError(
                operation,
                f"the page of {take} item(s) at skip={skip} would take about "
                f"{_megabytes(memory_estimate)} of memory to parse (at most "
                f"{_megabytes(MAX_EXPORT_PAGE_MEMORY)})",
            )
        items, total_count = _parse_export_body(text, operation)
        return ExportPage(plan_id, skip, take, items, total_count, body_bytes, memory_estimate)

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"AchieveItClient(base_url={self._settings.base_url!r})"

    # -- the one place HTTP happens -----------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        *,
        operation: str,
        params: dict[str, str] | None = None,
        body: bytes | None = None,
        content_type: str | None = None,
        body_limit: int = MAX_RESPONSE_TEXT,
        strict_text: bool = False,
        whole_answer_in_read_timeout: bool = False,
        deadline: float | None = None,
    ) -> _Response:
        url = f"{self._settings.base_url}{path}"
        may_repeat = method == "GET"
        key = self._api_key.current()  # ConfigurationError here: nothing sent yet
        self._last_key = key
        key_refreshed = False
        attempt = 0
        started = time.monotonic()
        while True:
            attempt += 1
            if deadline is not None and time.monotonic() >= deadline:
                raise OutOfTimeError(f"{operation}: out of time before attempt {attempt}")
            request = _Attempt(
                method,
                url,
                params,
                body,
                content_type,
                body_limit,
                key,
                strict_text,
                whole_answer_in_read_timeout,
                deadline,
            )
            answer = self._send_once(request, operation, attempt)
            if isinstance(answer, RetryableApiError):
                self._wait_before_retry(answer, operation, attempt, deadline)
                continue
            response, text, cut = answer
            status = response.status_code
            if 200 <= status < 300:
                return _Response(status, text, attempt, time.monotonic() - started, cut)
            refresh_problem = ""
            if status == 401 and not key_refreshed:
                # A rotated secret: fetch it once, retry at once, never loop on it.
                key_refreshed = True
                try:
                    fresh_key = self._api_key.refresh()
                except ConfigurationError as exc:  # the 401 stands: nothing was applied
                    fresh_key, refresh_problem = None, f" (reading the key again: {exc})"
                if fresh_key is not None:
                    log.warning("API key refused (401); retrying with the refreshed key")
                    key = self._last_key = fresh_key
                    continue
            failure = _answer_failure(
                response, text, operation, attempt, may_repeat, key, refresh_problem
            )
            self._wait_before_retry(failure, operation, attempt, deadline)

    def _send_once(
        self, request: _Attempt, operation: str, attempt: int
    ) -> tuple[requests.Response, str, bool] | RetryableApiError:
        """One attempt: the answer (status, scrubbed text, whether it was cut), or the
        failure to retry; raises what must not be retried."""
        headers = {"Authorization": f"API-KEY {request.key.reveal()}"}
        if request.content_type:
            headers["Content-Type"] = request.content_type
        may_repeat = request.method == "GET"
        sent_at = time.monotonic()
        answer_by = request.deadline
        if request.whole_answer_in_read_timeout:
            answer_by = min(answer_by or math.inf, sent_at + self._settings.read_timeout)
        connect_timeout, read_timeout = self._settings.connect_timeout, self._settings.read_timeout
        if answer_by is not None:
            left = max(answer_by - sent_at, 0.001)
            connect_timeout, read_timeout = min(connect_timeout, left), min(read_timeout, left)
        self._stats.attempts += 1
        try:
            response = self._session.request(
                request.method,
                request.url,
                params=request.params,
                data=request.body,
                headers=headers,
                timeout=(connect_timeout, read_timeout),
                allow_redirects=False,
                stream=True,
            )
            text, cut = read_text(
                response,
                request.body_limit,
                tail_guard=_echo_chars(request.key),
                strict=request.strict_text,
                answer_by=answer_by,
                read_timeout=read_timeout,
            )
        except AnswerTooSlowError:
            self._stats.failures += 1
            if request.deadline is not None and time.monotonic() >= request.deadline:
                raise OutOfTimeError(
                    f"{operation}: out of time while the answer was arriving"
                ) from None
            return RetryableApiError(
                operation,
                f"the answer did not arrive whole within {self._settings.read_timeout:g} s "
                "(ACHIEVEIT_READ_TIMEOUT_SECONDS): the server sent it too slowly",
                attempts=attempt,
            )
        except UndecodableAnswerError as exc:
            self._stats.failures += 1
            raise PermanentApiError(
                operation, exc.reason, status=response.status_code, attempts=attempt
            ) from None
        except requests.exceptions.RequestException as exc:
            self._stats.failures += 1
            return _transport_failure(exc, operation, attempt, may_repeat)
        except Exception as exc:  # noqa: BLE001 - anything else the transport raises
            self._stats.failures += 1
            raise _unexpected_failure(exc, operation, attempt, may_repeat, request.key) from None
        finally:
            self._stats.seconds += time.monotonic() - sent_at
        if not 200 <= response.status_code < 300:
            self._stats.failures += 1
        log.debug(
            "AchieveIt answered",
            extra={"method": request.method, "status": response.status_code, "attempt": attempt},
        )
        return response, request.key.scrub(text), cut

    def _wait_before_retry(
        self,
        failure: RetryableApiError,
        operation: str,
        attempt: int,
        deadline: float | None = None,
    ) -> None:
        """Sleep before the next attempt, or raise ``failure`` when it is time to give up
        (the attempts are used up, or the wait would end past ``deadline``)."""
        policy = self._settings.retry
        if attempt >= policy.max_attempts:
            raise failure
        delay = wait_before_retry(attempt, failure.retry_after, policy, self._rng)
        if delay is not None and deadline is not None and time.monotonic() + delay >= deadline:
            raise failure
        if delay is None:
            raise RetryableApiError(
                operation,
                f"{failure.reason}, asking to wait {failure.retry_after:.0f}s (more than the "
                f"{policy.max_retry_after:.0f}s this client waits)",
                status=failure.status,
                server_message=failure.server_message,
                attempts=attempt,
                retry_after=failure.retry_after,
            )
        log.warning(
            "AchieveIt request failed; retrying",
            extra={
                "operation": operation,
                "status": failure.status,
                "reason": failure.reason,
                "attempt": attempt,
                "wait_seconds": round(delay, 3),
            },
        )
        self._sleep(delay)


def _transport_failure(
    exc: requests.exceptions.RequestException, operation: str, attempt: int, may_repeat: bool
) -> RetryableApiError:
    """Translate a failure without an HTTP answer; raise unless it is safe to retry."""
    # Raised "from None": a requests exception holds the prepared request, headers and all.
    reason = describe_transport_error(exc)
    if isinstance(exc, requests.exceptions.SSLError):
        raise TransportSecurityError(operation, f"TLS connection refused: {reason}") from None
    if request_may_have_arrived(exc) and not may_repeat:
        raise AmbiguousDeliveryError(
            operation,
            f"sent, but no answer arrived ({reason}); it may have been applied",
            attempts=attempt,
        ) from None
    return RetryableApiError(operation, reason, attempts=attempt)


@dataclass(frozen=True, slots=True)
class _Attempt:
    method: str
    url: str
    params: dict[str, str] | None
    body: bytes | None
    content_type: str | None
    body_limit: int
    key: ApiKey
    strict_text: bool = False
    whole_answer_in_read_timeout: bool = False
    deadline: float | None = None


def _answer_failure(
    response: requests.Response,
    text: str,
    operation: str,
    attempt: int,
    may_repeat: bool,
    key: ApiKey,
    extra_reason: str,
) -> RetryableApiError:
    """Translate a non-2xx answer (raises unless it is safe to retry). An answer that cannot
    even be read (an absurd ``Retry-After``) is still an answer: nothing was applied."""
    try:
        return _status_failure(
            response,
            text,
            operation=operation,
            attempt=attempt,
            may_repeat=may_repeat,
            key=key,
            extra_reason=extra_reason,
        )
    except ApiError:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever the answer held
        return RetryableApiError(
            operation,
            f"HTTP {response.status_code} with an answer that cannot be read "
            f"({type(exc).__name__})",
            status=response.status_code,
            attempts=attempt,
        )


def _unexpected_failure(
    exc: Exception, operation: str, attempt: int, may_repeat: bool, key: ApiKey
) -> ApiError:
    """An error the transport should not raise. Its text may quote what was being written
    (headers included), so only a scrubbed, shortened form survives."""
    reason = key.scrub(f"unexpected {type(exc).__name__}: {exc}")[:_MESSAGE_PREVIEW]
    if may_repeat:
        return PermanentApiError(operation, reason, attempts=attempt)
    # Nothing proves the bytes did not leave: the request may have been applied.
    return AmbiguousDeliveryError(
        operation, f"{reason}; the request may have been applied", attempts=attempt
    )


def _unsendable(
    updates: Sequence[Update], body_format: BodyFormat, exc: Exception
) -> UnsendableUpdatesError:
    for index, update in enumerate(updates):
        try:
            encode_updates([update], body_format)
        except (ValueError, TypeError, ArithmeticError, UnicodeError) as row_exc:
            return UnsendableUpdatesError(index, f"{type(row_exc).__name__}: {row_exc}"[:200])
    return UnsendableUpdatesError(0, f"{type(exc).__name__}: {exc}"[:200])


def _status_failure(
    response: requests.Response,
    text: str,
    *,
    operation: str,
    attempt: int,
    may_repeat: bool,
    key: ApiKey,
    extra_reason: str = "",
) -> RetryableApiError:
    """Translate a non-2xx answer; raise unless it is safe to retry."""
    status = response.status_code
    message = _server_message(text, key)
    if status == 504 and not may_repeat:
        # A gateway gave up waiting for the backend, which may still apply the request.
        raise AmbiguousDeliveryError(
            operation,
            "the gateway timed out (504); the request may have been applied",
            status=status,
            server_message=message,
            attempts=attempt,
        )
    if not _is_retryable_status(status):
        raise _permanent_error(operation, status, message, attempt, extra_reason)
    return RetryableApiError(
        operation,
        f"HTTP {status} {response.reason or ''}".strip(),
        status=status,
        server_message=message,
        attempts=attempt,
        retry_after=parse_retry_after(response.headers.get("Retry-After")),
    )


def _echo_chars(key: ApiKey) -> int:
    """The most characters an echoed key can take (six per character: ``\\u002b``)."""
    return 6 * len(key.reveal())


def _is_retryable_status(status: int) -> bool:
    return status in (408, 429) or (500 <= status < 600 and status not in (501, 505))


_PERMANENT_ERRORS: dict[int, tuple[type[PermanentApiError], str]] = {
    400: (BadRequestError, "refused as invalid (400)"),
    401: (AuthenticationError, "the API key was refused (401); check or rotate the key"),
    403: (
        AccessDeniedError,
        "access denied (403); is API access on for the organisation, and may the key's "
        "user do this in the web app?",
    ),
    404: (NotFoundError, "not found (404); check the plan id or the base URL"),
}


def _permanent_error(
    operation: str, status: int, message: str, attempts: int, extra_reason: str = ""
) -> ApiError:
    error_type, reason = _PERMANENT_ERRORS.get(status, (PermanentApiError, f"HTTP {status}"))
    return error_type(
        operation, reason + extra_reason, status=status, server_message=message, attempts=attempts
    )


def _server_message(text: str, key: ApiKey) -> str:
    """What the server said, shortened and with the key blanked should it echo it."""
    message = text.strip()
    try:
        document = json.loads(message) if message else None
    except ValueError:
        document = None
    if isinstance(document, dict):
        for field in ("message", "error", "detail", "title", "Message"):
            value = document.get(field)
            if isinstance(value, str) and value.strip():
                message = value.strip()
                break
    message = key.scrub(message)
    if len(message) > _MESSAGE_PREVIEW:
        message = message[:_MESSAGE_PREVIEW] + "..."
    return message


def utf8_length(text: str) -> int:
    """How many bytes ``text`` was on the wire, or more: a reader that replaced undecodable
    bytes made each at most three bytes longer, never shorter."""
    if text.isascii():  # constant time: CPython knows whether a string is ASCII
        return len(text)
    return len(text.encode("utf-8", "surrogatepass"))


_PER_JSON_TOKEN_BYTES = 128
"""What each ``{``, ``[``, ``,`` or ``:`` of a JSON text may cost once parsed, at most: a
dict, list, key or value object and the slot that holds it. Measured on CPython 3.13 (64-bit):
``[{},{},...]`` costs 72 bytes an element and 24 bytes a character, the most of any shape;
ordinary items cost about 2 bytes a character."""


def page_memory_estimate(text: str) -> int:
    """An upper bound on the memory a page holds while ``json.loads(text)`` runs: the text
    (one to four bytes a character), as much again for the strings parsed out of it, and
    ``_PER_JSON_TOKEN_BYTES`` for each structural character (those inside strings counted
    too: the bound only errs high). Four C-speed passes over the text, no copy."""
    tokens = text.count("{") + text.count("[") + text.count(",") + text.count(":")
    return 2 * sys.getsizeof(text) + _PER_JSON_TOKEN_BYTES * tokens


def _megabytes(size: int) -> str:
    return f"{size / 2**20:.3g} MB"


def _parse_export_body(text: str, operation: str) -> tuple[list[dict[str, Any]], int | None]:
    try:
        # Every number keeps its exact value (1e400, a 5,000-digit integer): see exact_json.
        document = exact_json.loads(text)
    except ValueError:
        raise PermanentApiError(
            operation, "the answer is not JSON", server_message=text[:_MESSAGE_PREVIEW]
        ) from None
    except RecursionError:
        raise PermanentApiError(
            operation, "the answer is JSON nested too deeply to read (over 1,000 levels)"
        ) from None
    # Current docs and public clients read {"items": [...], "totalCount": N}; a bare array
    # is accepted too, without a total.
    total_count: int | None = None
    if isinstance(document, dict):
        items = document.get("items")
        raw_total = document.get("totalCount")
        if isinstance(raw_total, int) and not isinstance(raw_total, bool) and raw_total >= 0:
            total_count = raw_total
    else:
        items = document
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise PermanentApiError(
            operation, "the answer has no list of items ('items' must be an array of objects)"
        )
    return items, total_count


def _check_submission(name: str, rows: int) -> None:
    if not rows:
        raise ValueError("a submission needs at least one update")
    if not name.strip():
        raise ValueError("a submission needs a name")


def _submission(
    name: str, kind: UpdateKind, rows: int, body: bytes, body_format: BodyFormat
) -> Submission:
    """A batch ready to send: its path, and the operation its messages name."""
    count = f"{rows} row" + ("" if rows == 1 else "s")
    return Submission(
        name=name,
        kind=kind,
        rows=rows,
        path=f"/api/{kind.api_collection}/{quote(name, safe='')}",
        operation=f"{_kind_label(kind)} submission '{name}' ({count})",
        body=body,
        content_type=body_format.content_type,
    )


def _kind_label(kind: UpdateKind) -> str:
    return "progress update" if kind is UpdateKind.PROGRESS else "metric update"
