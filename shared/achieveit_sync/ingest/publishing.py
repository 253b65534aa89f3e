"""Publishing one part of a file's valid rows, checkpointing around every request.

When AchieveIt refuses a whole request (400 or 403, or 413 for size) without saying which
rows are to blame, the rows are split in halves and each half is sent again, until the
offending rows stand alone: the good rows still get through and each bad row is reported
with the API's own message. It costs about 2*log2(n) extra requests per bad row.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from achieveit_sync.client import AchieveItClient, Submission, UnsendableUpdatesError
from achieveit_sync.errors import (
    AccessDeniedError,
    AchieveItSyncError,
    AmbiguousDeliveryError,
    ApiError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    NotFoundError,
    PermanentApiError,
    RetryableApiError,
    SecretUnavailableError,
    TransportSecurityError,
)
from achieveit_sync.ingest.checkpoints import CheckpointStore, PartRecord
from achieveit_sync.ingest.report import MAX_REPORTED_BODY_CHARS, RequestRecord
from achieveit_sync.ingest.validation import ValidRow
from achieveit_sync.updates import BodyFormat, ProgressUpdate, UpdateKind

_SPLITTABLE_STATUSES = (413,)


class StopPublishingError(AchieveItSyncError):
    """Publishing this file cannot go on now.

    ``retry_later``: the API is unavailable; resume from the checkpoint later. Otherwise the
    file failed for a reason no retry fixes by itself (key refused, wrong base URL).
    """

    def __init__(self, message: str, *, retry_later: bool, hint: str = "") -> None:
        self.retry_later = retry_later
        self.hint = hint or (
            "the next attempt resumes where this one stopped: rows already answered are "
            "not sent again"
            if retry_later
            else "fix the cause (API key, access, base URL), then send the file again: rows "
            "already accepted are not sent again"
        )
        super().__init__(message)


def _hint_for(exc: ApiError) -> str:
    """What to do about a refusal that stops a file, by its kind."""
    if isinstance(exc, TransportSecurityError):
        return (
            "the server's certificate is not trusted, or it offers TLS below 1.2: a server "
            "with a private CA (such as the sandbox) needs ACHIEVEIT_CA_BUNDLE set to its CA "
            "certificate; then send the file again"
        )
    if isinstance(exc, AuthenticationError):
        return (
            "set or rotate the API key, then send the file again: rows already accepted are "
            "not sent again"
        )
    if isinstance(exc, NotFoundError):
        return "check ACHIEVEIT_BASE_URL (https://api.achieveit.com, or gov-api for government)"
    return ""


@dataclass
class PartPublisher:
    """Sends parts of one file: ``<stem>.part-0001.json``, split halves ``...-1``, ``...-2``."""

    client: AchieveItClient
    checkpoints: CheckpointStore
    file_id: str
    name_stem: str
    body_format: BodyFormat = BodyFormat.JSON
    settled_rows: int = field(default=0, init=False)
    """Rows this publisher settled (accepted, refused or ambiguous): progress of this run."""
    accepted_rows: int = field(default=0, init=False)
    """Of those, the rows AchieveIt accepted in this run."""
    _refusals_in_a_row: int = field(default=0, init=False)
    _refusal_limit: int = field(default=0, init=False)

    def publish(self, record: PartRecord, rows: Sequence[ValidRow]) -> None:
        """Send ``rows`` (the part's unsettled rows), settling each in ``record``.

        Raises ``StopPublishingError`` when the file cannot go on; ``record`` then says
        exactly which rows were settled, so a rerun sends only the rest.
        """
        if rows:
            name = f"{self.name_stem}.part-{record.part:04d}"
            # Isolating one bad row costs about log2(n) refusals in a row; twice that and
            # more means nearly every row is refused (access lost, another organisation's
            # IDs): stop with the API's message instead of sending every row alone.
            self._refusal_limit = 2 * (math.ceil(math.log2(len(rows))) + 1) + 2
            self._send(record, list(rows), name)
        record.complete = len(record.settled_lines()) >= record.rows
        if record.complete:
            record.accepted_lines = []
        self.checkpoints.save(self.file_id, record)

    def _send(self, record: PartRecord, rows: list[ValidRow], name: str) -> None:
        request_name = f"{name}.{self.body_format.value}"
        # Everything that can fail before a byte leaves happens before "in flight" is
        # recorded: only a request that may have reached AchieveIt makes rows ambiguous.
        try:
            submission = self._prepare(request_name, rows)
        except UnsendableUpdatesError as exc:
            raise StopPublishingError(
                f"line {rows[exc.index].line} cannot be put into a request ({exc.reason}); "
                "nothing was sent for it or the rows after it. Please report this: "
                "validation should have refused the row",
                retry_later=False,
            ) from None
        record.in_flight = [row.line for row in rows]
        record.in_flight_request = request_name
        self.checkpoints.save(self.file_id, record)
        started = time.monotonic()
        try:
            result = self.client.send_submission(submission)
        except ConfigurationError as exc:
            # No usable API key: raised before the request was written, so nothing left.
            self._clear_in_flight(record)
            raise StopPublishingError(
                str(exc),
                retry_later=False,
                hint="fix the setting or secret named above, then send the file again: "
                "rows already settled are not sent again",
            ) from exc
        except SecretUnavailableError as exc:
            # Secrets Manager did not answer: nothing was sent; a later attempt may succeed.
            self._clear_in_flight(record)
            raise StopPublishingError(str(exc), retry_later=True) from exc
        except AmbiguousDeliveryError as exc:
            # Recorded before the checkpoint clears "in flight": a crash in between must
            # leave these rows ambiguous, never unsettled (which would re-send them).
            for row in rows:
                record.ambiguous[row.line] = request_name
            self.settled_rows += len(rows)
            self._close_request(record, rows, request_name, "ambiguous", exc, started)
        except (BadRequestError, AccessDeniedError) as exc:
            self._refused(record, rows, name, request_name, exc, started)
        except PermanentApiError as exc:
            if exc.status in _SPLITTABLE_STATUSES:
                self._refused(record, rows, name, request_name, exc, started)
            else:
                self._left_unsent(record, rows, request_name, exc, started)
                raise StopPublishingError(str(exc), retry_later=False, hint=_hint_for(exc)) from exc
        except RetryableApiError as exc:
            self._left_unsent(record, rows, request_name, exc, started)
            raise StopPublishingError(str(exc), retry_later=True) from exc
        else:
            _log_request(
                record,
                rows,
                request_name,
                "accepted",
                result.status_code,
                result.body,
                result.attempts,
                started,
            )
            self._refusals_in_a_row = 0
            self.settled_rows += len(rows)
            self.accepted_rows += len(rows)
            record.accepted += len(rows)
            record.accepted_lines.extend(row.line for row in rows)
            self._clear_in_flight(record)

    def _prepare(self, request_name: str, rows: list[ValidRow]) -> Submission:
        bodies = [row.body for row in rows]
        if self.body_format is BodyFormat.JSON and None not in bodies:
            # Written by the spool already: the same bytes encode_updates would make.
            kind = (
                UpdateKind.PROGRESS if type(rows[0].update) is ProgressUpdate else UpdateKind.METRIC
            )
            return self.client.prepare_json_submission(request_name, kind, bodies)  # type: ignore[arg-type]
        return self.client.prepare_submission(
            request_name, [row.update for row in rows], self.body_format
        )

    def _refused(
        self,
        record: PartRecord,
        rows: list[ValidRow],
        name: str,
        request_name: str,
        exc: ApiError,
        started: float,
    ) -> None:
        self._refusals_in_a_row += 1
        if self._refusals_in_a_row > self._refusal_limit:
            self._left_unsent(record, rows, request_name, exc, started)
            raise StopPublishingError(
                f"AchieveIt refused {self._refusals_in_a_row} requests in a row "
                f"(HTTP {exc.status}: {exc.server_message or exc.reason}); stopped instead of "
                "sending every row alone: check the service account's access and the "
                "external IDs",
                retry_later=False,
            ) from exc
        if len(rows) == 1:
            record.refused[rows[0].line] = exc.server_message or exc.reason
            self.settled_rows += 1
        self._close_request(record, rows, request_name, "refused", exc, started)
        if len(rows) == 1:
            return
        middle = len(rows) // 2
        self._send(record, rows[:middle], f"{name}-1")
        self._send(record, rows[middle:], f"{name}-2")

    def _close_request(
        self,
        record: PartRecord,
        rows: list[ValidRow],
        request_name: str,
        outcome: str,
        exc: ApiError,
        started: float,
    ) -> None:
        """The request is over (whatever it did to the rows): log its answer in the part's
        record and clear "in flight"."""
        _log_request(
            record,
            rows,
            request_name,
            outcome,
            exc.status,
            exc.server_message or exc.reason,
            exc.attempts,
            started,
        )
        self._clear_in_flight(record)

    def _left_unsent(
        self,
        record: PartRecord,
        rows: list[ValidRow],
        request_name: str,
        exc: ApiError,
        started: float,
    ) -> None:
        # Nothing was applied: the rows stay unsettled and the next run sends them.
        self._close_request(record, rows, request_name, "failed", exc, started)

    def _clear_in_flight(self, record: PartRecord) -> None:
        record.in_flight = []
        record.in_flight_request = ""
        self.checkpoints.save(self.file_id, record)


def _log_request(
    record: PartRecord,
    rows: list[ValidRow],
    request_name: str,
    outcome: str,
    status_code: int | None,
    body: str,
    attempts: int,
    started: float,
) -> None:
    """Add one request, with AchieveIt's answer, to the part's record (and so the report)."""
    record.requests.append(
        RequestRecord(
            name=request_name,
            part=record.part,
            rows=len(rows),
            first_line=rows[0].line,
            last_line=rows[-1].line,
            outcome=outcome,
            status_code=status_code,
            response_body=body[:MAX_REPORTED_BODY_CHARS],
            attempts=attempts,
            seconds=round(time.monotonic() - started, 3),
        ).as_dict()
    )
