"""S3 access for the whole package: the one module that calls the S3 API.

Reads stream through Powertools Streaming (``S3Object``: ranged GETs, nothing buffered whole),
pinned to the exact version (or ETag) that triggered the work, so a file replaced while it is
processed is never half old, half new. Writes of unknown size go through the transfer
manager, which switches to multipart uploads for large bodies.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from achieveit_sync.errors import AchieveItSyncError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from achieveit_sync.ingest.reading import ByteSource

log = logging.getLogger(__name__)


class ObjectGoneError(AchieveItSyncError):
    """The object (that version of it) no longer exists, e.g. it was already archived."""


@dataclass(frozen=True)
class ObjectRef:
    """One exact S3 object: a version when the bucket is versioned, else an ETag."""

    bucket: str
    key: str
    version_id: str | None = None
    etag: str | None = None

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    @property
    def quoted_etag(self) -> str:
        """The ETag as HTTP's If-Match wants it (S3 notifications send it bare)."""
        etag = self.etag or ""
        return etag if etag.startswith('"') else f'"{etag}"'

    @property
    def identity(self) -> str:
        """Stable id for this content: bucket, key, and version or ETag."""
        return f"{self.bucket}/{self.key}#{self.version_id or self.etag or 'unversioned'}"


class S3Storage:
    def __init__(self, client: S3Client) -> None:
        self._client = client

    def open(self, ref: ObjectRef) -> ByteSource:
        """A streaming, read-only view of exactly ``ref``."""
        from aws_lambda_powertools.utilities.streaming import S3Object

        options: dict[str, Any] = {}
        if ref.version_id is None and ref.etag:
            options["IfMatch"] = ref.quoted_etag
        return S3Object(
            bucket=ref.bucket,
            key=ref.key,
            version_id=ref.version_id,
            boto3_client=self._client,
            **options,
        )

    def head(self, ref: ObjectRef) -> dict[str, Any]:
        """The object's metadata; ``ObjectGoneError`` when that version no longer exists."""
        options: dict[str, Any] = {"Bucket": ref.bucket, "Key": ref.key}
        if ref.version_id:
            options["VersionId"] = ref.version_id
        elif ref.etag:
            options["IfMatch"] = ref.quoted_etag
        try:
            return dict(self._client.head_object(**options))
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            # Only "that version is not there": anything else (403, a 400) must fail the
            # message loudly rather than skip the file as handled.
            if code in ("404", "NoSuchKey", "NoSuchVersion", "412", "PreconditionFailed"):
                raise ObjectGoneError(f"{ref.uri} ({ref.version_id or ref.etag}) is gone") from exc
            raise

    def get_bytes(self, bucket: str, key: str) -> bytes:
        """A small object's content (manifests, pointers); ``ObjectGoneError`` if missing."""
        try:
            return self._client.get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code", "") in ("NoSuchKey", "404"):
                raise ObjectGoneError(f"s3://{bucket}/{key} does not exist") from exc
            raise

    # Encryption at rest is the buckets' default encryption (see template.yaml).

    def put_bytes(self, bucket: str, key: str, body: bytes, content_type: str) -> None:
        self._client.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)

    def put_stream(self, bucket: str, key: str, body: IO[bytes], content_type: str) -> None:
        """Upload a file object of any size (multipart above 8 MB)."""
        self._client.upload_fileobj(body, bucket, key, ExtraArgs={"ContentType": content_type})

    def move(self, ref: ObjectRef, destination_key: str) -> None:
        """Copy ``ref`` to ``destination_key`` in the same bucket, then delete that version."""
        source: dict[str, str] = {"Bucket": ref.bucket, "Key": ref.key}
        if ref.version_id:
            source["VersionId"] = ref.version_id
        # The managed copy switches to multipart copy above 5 GB, where copy_object fails.
        self._client.copy(source, ref.bucket, destination_key)  # type: ignore[arg-type]
        delete: dict[str, Any] = {"Bucket": ref.bucket, "Key": ref.key}
        if ref.version_id:
            delete["VersionId"] = ref.version_id
        self._client.delete_object(**delete)
        log.info("moved", extra={"source": ref.uri, "destination": destination_key})
