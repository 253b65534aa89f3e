"""The errors achieveit-sync raises, by what the caller should do about them.

The HTTP boundary (``client.py``) translates every transport and status failure into one of
three families, because each calls for a different decision:

* ``PermanentApiError``: asking again will not help (400, 401, 403, 404, a TLS failure).
  Fix the data, the key or the access rights.
* ``RetryableApiError``: nothing was processed (429, 5xx, a connection that never carried
  the request); the client already retried up to its limit. Try again later.
* ``AmbiguousDeliveryError``: the request went out and no answer came back. It may or may
  not have been applied, so it must not be re-sent blindly; report it.

No message built here ever contains the API key: the client scrubs server messages before
they reach these types, and none of them holds the key.
"""

from __future__ import annotations


class AchieveItSyncError(Exception):
    """Base class for every error this package raises on purpose."""


class ConfigurationError(AchieveItSyncError):
    """A setting is missing or invalid; the message names it and says what is expected."""


class SecretUnavailableError(AchieveItSyncError):
    """Secrets Manager could not be reached, or failed (throttled, 5xx), while reading the
    API key: the key itself may be fine, and a later run may succeed."""


class ApiError(AchieveItSyncError):
    """A call to the AchieveIt API failed.

    ``operation`` says what was attempted in words a user understands ("export of plan
    'P-1'"), ``status`` is the HTTP status when the server answered, and ``server_message``
    is what the server said (scrubbed of the API key, shortened for logs).
    """

    def __init__(
        self,
        operation: str,
        reason: str,
        *,
        status: int | None = None,
        server_message: str = "",
        attempts: int = 1,
    ) -> None:
        self.operation = operation
        self.reason = reason
        self.status = status
        self.server_message = server_message
        self.attempts = attempts
        super().__init__(self._describe())

    def _describe(self) -> str:
        parts = [f"{self.operation}: {self.reason}"]
        if self.server_message:
            parts.append(f"server said: {self.server_message}")
        if self.attempts > 1:
            parts.append(f"after {self.attempts} attempts")
        return "; ".join(parts)


class PermanentApiError(ApiError):
    """The API refused the request in a way that retrying cannot fix."""


class BadRequestError(PermanentApiError):
    """400: the body or the query was refused (bad rows, unknown external IDs, ...)."""


class AuthenticationError(PermanentApiError):
    """401: the API key is missing, wrong, revoked or rotated."""


class AccessDeniedError(PermanentApiError):
    """403: API access is off for the organisation, or the key's user lacks the right."""


class NotFoundError(PermanentApiError):
    """404: the plan (or path) does not exist for this organisation."""


class TransportSecurityError(PermanentApiError):
    """TLS failed: an untrusted certificate, a wrong host name, or a protocol below TLS 1.2."""


class RetryableApiError(ApiError):
    """A transient failure that outlasted the retry limit; nothing was processed.

    ``retry_after`` is the server's last requested wait in seconds, when it gave one.
    """

    def __init__(
        self,
        operation: str,
        reason: str,
        *,
        status: int | None = None,
        server_message: str = "",
        attempts: int = 1,
        retry_after: float | None = None,
    ) -> None:
        self.retry_after = retry_after
        super().__init__(
            operation, reason, status=status, server_message=server_message, attempts=attempts
        )


class AmbiguousDeliveryError(ApiError):
    """The request was sent but no answer arrived: it may have been applied.

    Raised for POSTs only; idempotent reads are simply retried.
    """


class PaginationError(AchieveItSyncError):
    """The export endpoint's paging did not converge (a server that never stops, or loops)."""
