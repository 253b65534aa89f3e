"""S3 access for the whole package: the one module that calls the S3 API.

Reads stream through Powertools Streaming (``S3Object``: ranged GETs, nothing buffered whole),
pinned to the exact version (or ETag) that triggered the work, so a file replaced while it is
processed is never half old, half new. Writes of unknown size go through the transfer
manager, which switches to multipart uploads for large bodies.

What a 403 means. S3 answers a GET or HEAD of a missing key with 404 only when the caller may
``s3:ListBucket`` on the bucket; otherwise with 403 AccessDenied, the same answer as for an
object the caller may not read. The template grants ListBucket (so missing is a 404), but a
narrower policy (ListBucket only under an ``s3:prefix`` condition, which a GET or HEAD never
carries) turns every missing key into a 403. On a 403 this module therefore lists the exact
key, which such a policy does allow (a List request carries ``s3:prefix``):

* the listing shows no such key: the object is missing, exactly as if S3 had said 404
  (``ObjectGoneError``);
* the key is listed, or the listing is refused too: S3 will not let us read it, and it may
  well be there. ``head`` raises ``ObjectAccessDeniedError`` so that a dropped file never
  vanishes on a 403: the file fails loudly, with a report. ``get_bytes`` (small optional
  objects such as ``latest.json``) treats it as missing by default and logs a warning: a
  backup that cannot read ``latest.json`` stores a full copy instead of a pointer, which is
  harmless.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import IO, TYPE_CHECKING, Any, Protocol

from botocore.exceptions import ClientError

from achieveit_sync.errors import AchieveItSyncError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


class ByteSource(Protocol):
    """Anything with ``read(size)`` returning bytes: an open file, an S3 object stream."""

    def read(self, size: int = -1, /) -> bytes | None: ...


log = logging.getLogger(__name__)


class ObjectGoneError(AchieveItSyncError):
    """The object (that version of it) no longer exists, e.g. it was already archived."""


class ObjectAccessDeniedError(AchieveItSyncError):
    """S3 answered 403 AccessDenied and the object may exist: the role may not read it (a
    bucket policy, an SSE-KMS key it may not use), or it is gone and the role may not even
    list the key. Never to be taken as "gone"."""


class ObjectTooLargeError(AchieveItSyncError):
    """An object larger than its reader allows (a small document that is not small)."""


_MISSING = frozenset({"404", "NoSuchKey", "NoSuchVersion", "412", "PreconditionFailed"})
_DENIED = frozenset({"403", "AccessDenied", "Forbidden"})


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
        """The object's metadata. ``ObjectGoneError`` when that version no longer exists (a
        404, or a 403 for a key S3's listing does not show); ``ObjectAccessDeniedError`` when
        S3 refuses and the object may exist. Anything else (a 400, a 500) is raised as is."""
        options: dict[str, Any] = {"Bucket": ref.bucket, "Key": ref.key}
        if ref.version_id:
            options["VersionId"] = ref.version_id
        elif ref.etag:
            options["IfMatch"] = ref.quoted_etag
        try:
            return dict(self._client.head_object(**options))
        except ClientError as exc:
            code = _error_code(exc)
            if code in _MISSING:
                raise ObjectGoneError(f"{ref.uri} ({ref.version_id or ref.etag}) is gone") from exc
            if code not in _DENIED:
                raise
            listed = self._is_listed(ref.bucket, ref.key)
            if listed is False:
                log.warning(
                    "S3 answered 403 for a key it does not list: treated as gone "
                    "(grant s3:ListBucket on the bucket to get a 404)",
                    extra={"object": ref.uri, "version": ref.version_id},
                )
                raise ObjectGoneError(
                    f"{ref.uri} ({ref.version_id or ref.etag}) is gone (S3 answered 403; "
                    "the bucket's listing has no such key)"
                ) from exc
            raise ObjectAccessDeniedError(_denied_message(ref.uri, listed)) from exc

    def get_bytes(
        self,
        bucket: str,
        key: str,
        *,
        denied_means_missing: bool = True,
        max_bytes: int | None = None,
    ) -> bytes:
        """A small object's content (manifests, pointers). ``ObjectGoneError`` if missing,
        whether S3 says 404 or (to a role that may not list) 403. When S3 refuses an object
        that may exist: missing as well by default, with a warning (a pointer that cannot be
        read is as good as none); ``ObjectAccessDeniedError`` with
        ``denied_means_missing=False``.

        ``max_bytes``: its size is looked up first (HEAD), and an object larger than that
        raises ``ObjectTooLargeError`` without being read (nor more than ``max_bytes`` of
        one replaced meanwhile)."""
        uri = f"s3://{bucket}/{key}"
        try:
            if max_bytes is None:
                return self._client.get_object(Bucket=bucket, Key=key)["Body"].read()
            return self._get_at_most(bucket, key, max_bytes)
        except ClientError as exc:
            code = _error_code(exc)
            if code in _MISSING:
                raise ObjectGoneError(f"{uri} does not exist") from exc
            if code not in _DENIED:
                raise
            listed = self._is_listed(bucket, key)
            if listed is False:
                raise ObjectGoneError(f"{uri} does not exist (S3 answered 403)") from exc
            if not denied_means_missing:
                raise ObjectAccessDeniedError(_denied_message(uri, listed)) from exc
            log.warning(
                "S3 refused to read an object that may exist: treated as missing",
                extra={"object": uri, "listed": listed},
            )
            raise ObjectGoneError(f"{uri} could not be read (403): treated as missing") from exc

    def _get_at_most(self, bucket: str, key: str, max_bytes: int) -> bytes:
        size = int(self._client.head_object(Bucket=bucket, Key=key)["ContentLength"])
        data = b""
        if size <= max_bytes:
            body = self._client.get_object(Bucket=bucket, Key=key)["Body"]
            try:
                data = body.read(max_bytes + 1)
            finally:
                body.close()
            size = len(data)
        if size > max_bytes:
            raise ObjectTooLargeError(
                f"s3://{bucket}/{key} is {size:,} bytes, more than the {max_bytes:,} such a "
                "document may be"
            )
        return data

    def _is_listed(self, bucket: str, key: str) -> bool | None:
        """Whether S3's listing holds ``key`` (None when the listing is refused too). A List
        request carries s3:prefix, so a prefix-conditioned ListBucket grant allows it."""
        try:
            listing = self._client.list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1)
        except ClientError as exc:
            if _error_code(exc) in _DENIED:
                return None
            raise
        # The key itself sorts first among the keys it prefixes.
        return any(item.get("Key") == key for item in listing.get("Contents", []))

    # Encryption at rest is the buckets' default encryption (see template.yaml).

    def list_keys(self, bucket: str, prefix: str) -> Iterator[tuple[str, datetime]]:
        """Every key under ``prefix``, with when it was last written."""
        paginator = self._client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                yield item["Key"], item["LastModified"]

    def list_sizes(self, bucket: str, prefix: str) -> Iterator[tuple[str, int]]:
        """Every key under ``prefix``, with its size in bytes."""
        paginator = self._client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                yield item["Key"], item.get("Size", 0)

    def exists(self, bucket: str, key: str) -> bool:
        """Whether ``key`` is there, by listing (s3:ListBucket; no read of the object)."""
        listing = self._client.list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1)
        return any(item.get("Key") == key for item in listing.get("Contents", []))

    def delete_if_present(self, bucket: str, key: str) -> bool:
        """Remove ``key`` (a delete marker in a versioned bucket) if it is there; looked up
        by listing first, so that absent keys do not collect delete markers."""
        if not self.exists(bucket, key):
            return False
        self._client.delete_object(Bucket=bucket, Key=key)
        log.info("removed", extra={"key": f"s3://{bucket}/{key}"})
        return True

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


def parse_s3_location(text: str) -> tuple[str, str]:
    """``s3://bucket[/prefix]`` as ``(bucket, prefix)``, the prefix either empty or ending in
    one ``/`` (``s3://b/p`` and ``s3://b/p/`` are one place). The bucket is empty when the
    text names none: each caller says so in its own words."""
    bucket, _, prefix = text.removeprefix("s3://").partition("/")
    prefix = prefix.strip("/")
    return bucket, (prefix + "/" if prefix else "")


def default_storage() -> S3Storage:
    """``S3Storage`` over a boto3 S3 client from the environment (credentials, region)."""
    import boto3

    return S3Storage(boto3.client("s3"))


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _denied_message(uri: str, listed: bool | None) -> str:
    seen = (
        "the object is listed, so it exists"
        if listed
        else "listing the key was refused too, so S3 will not say whether it exists"
    )
    return (
        f"S3 refused to read {uri} (403 AccessDenied) and {seen}. Check the function role "
        "(s3:GetObject and s3:ListBucket), the bucket policy and, for SSE-KMS objects, the "
        "key's policy."
    )
