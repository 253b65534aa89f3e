"""What storage decides when S3 answers 403 instead of 404.

S3 (HeadObject, GetObject: "Permissions"): for a missing key S3 answers 404 only to a caller
with s3:ListBucket on the bucket, otherwise 403 AccessDenied, the answer it also gives for an
object the caller may not read. botocore's Stubber plays S3 here; no socket is opened.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from achieveit_sync.backup.targets import S3Target
from achieveit_sync.storage import (
    ObjectAccessDeniedError,
    ObjectGoneError,
    ObjectRef,
    S3Storage,
)
from botocore.exceptions import ClientError
from botocore.stub import Stubber

BUCKET = "achieveit-sync-drop-123456789012-a1b2c3d4e5f6"
REF = ObjectRef(BUCKET, "incoming/progress/kpis.csv", version_id="v1", etag="0123abcd")
LISTING_PARAMS = {"Bucket": BUCKET, "Prefix": REF.key, "MaxKeys": 1}


@pytest.fixture
def s3() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client(
        "s3",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def head_answers(stubber: Stubber, status: int, code: str) -> None:
    stubber.add_client_error(
        "head_object",
        service_error_code=code,
        http_status_code=status,
        expected_params={"Bucket": BUCKET, "Key": REF.key, "VersionId": "v1"},
    )


def listing_holds(stubber: Stubber, *keys: str, params: dict[str, Any] = LISTING_PARAMS) -> None:
    stubber.add_response(
        "list_objects_v2",
        {"Contents": [{"Key": k} for k in keys], "KeyCount": len(keys)},
        expected_params=params,
    )


def listing_refused(stubber: Stubber) -> None:
    stubber.add_client_error(
        "list_objects_v2",
        service_error_code="AccessDenied",
        http_status_code=403,
        expected_params=LISTING_PARAMS,
    )


@pytest.mark.parametrize("code", ["404", "NoSuchKey", "NoSuchVersion"])
def test_a_404_means_gone_without_asking_again(s3: tuple[Any, Stubber], code: str) -> None:
    client, stubber = s3
    head_answers(stubber, 404, code)

    with pytest.raises(ObjectGoneError, match=r"incoming/progress/kpis.csv \(v1\) is gone"):
        S3Storage(client).head(REF)


def test_a_403_for_a_key_the_listing_does_not_hold_means_gone_like_a_404(
    s3: tuple[Any, Stubber], caplog: pytest.LogCaptureFixture
) -> None:
    """A role whose ListBucket is conditioned on s3:prefix gets 403 for a missing key; the
    listing of that exact key (which carries s3:prefix) shows it is missing."""
    client, stubber = s3
    head_answers(stubber, 403, "403")
    listing_holds(stubber, "incoming/progress/kpis.csv.old")  # a longer key, not this one

    with caplog.at_level(logging.WARNING), pytest.raises(ObjectGoneError, match="403"):
        S3Storage(client).head(REF)

    assert "treated as gone" in caplog.text


def test_a_403_for_a_listed_key_is_access_denied_never_gone(s3: tuple[Any, Stubber]) -> None:
    client, stubber = s3
    head_answers(stubber, 403, "403")
    listing_holds(stubber, REF.key)

    with pytest.raises(ObjectAccessDeniedError, match="the object is listed, so it exists"):
        S3Storage(client).head(REF)


def test_a_403_when_listing_is_refused_too_is_access_denied(s3: tuple[Any, Stubber]) -> None:
    """Without any ListBucket S3 will not say whether the object exists: the file must fail
    loudly (a report), not vanish as if it had been handled."""
    client, stubber = s3
    head_answers(stubber, 403, "403")
    listing_refused(stubber)

    with pytest.raises(ObjectAccessDeniedError) as raised:
        S3Storage(client).head(REF)

    assert not isinstance(raised.value, ObjectGoneError)
    assert "s3:ListBucket" in str(raised.value)
    assert f"s3://{BUCKET}/{REF.key}" in str(raised.value)


def test_other_errors_are_not_read_as_missing(s3: tuple[Any, Stubber]) -> None:
    client, stubber = s3
    head_answers(stubber, 500, "InternalError")

    with pytest.raises(ClientError):
        S3Storage(client).head(REF)


LATEST = "backups/P-1/latest.json"
LATEST_LISTING = {"Bucket": BUCKET, "Prefix": LATEST, "MaxKeys": 1}


def get_answers(stubber: Stubber, status: int, code: str, *, size_first: bool = True) -> None:
    """S3's answer to reading LATEST. A backup document is read with its size looked up
    first (HEAD, which has no error body: its code is the status), so the answer comes to
    the HEAD; without ``size_first``, to the GET."""
    stubber.add_client_error(
        "head_object" if size_first else "get_object",
        service_error_code=str(status) if size_first else code,
        http_status_code=status,
        expected_params={"Bucket": BUCKET, "Key": LATEST},
    )


@pytest.mark.parametrize(("status", "code"), [(404, "NoSuchKey"), (403, "AccessDenied")])
def test_a_missing_latest_json_reads_as_none_whether_s3_says_404_or_403(
    s3: tuple[Any, Stubber], status: int, code: str
) -> None:
    """The first backup of a plan reads backups/<plan>/latest.json before it exists."""
    client, stubber = s3
    get_answers(stubber, status, code)
    if status == 403:
        listing_holds(stubber, params=LATEST_LISTING)

    assert S3Target(S3Storage(client), BUCKET).read_json(LATEST) is None


def test_an_unreadable_latest_json_reads_as_none_with_a_warning(
    s3: tuple[Any, Stubber], caplog: pytest.LogCaptureFixture
) -> None:
    """Harmless: a backup that cannot read the pointer stores a full copy instead."""
    client, stubber = s3
    get_answers(stubber, 403, "AccessDenied")
    stubber.add_client_error(
        "list_objects_v2",
        service_error_code="AccessDenied",
        http_status_code=403,
        expected_params=LATEST_LISTING,
    )

    with caplog.at_level(logging.WARNING):
        assert S3Target(S3Storage(client), BUCKET).read_json(LATEST) is None

    assert "treated as missing" in caplog.text


def test_a_caller_can_ask_for_access_denied_instead_of_missing(s3: tuple[Any, Stubber]) -> None:
    client, stubber = s3
    get_answers(stubber, 403, "AccessDenied", size_first=False)
    listing_holds(stubber, LATEST, params=LATEST_LISTING)

    with pytest.raises(ObjectAccessDeniedError):
        S3Storage(client).get_bytes(BUCKET, LATEST, denied_means_missing=False)


def test_a_readable_object_is_returned(s3: tuple[Any, Stubber]) -> None:
    client, stubber = s3
    stubber.add_response(
        "get_object",
        {"Body": io.BytesIO(b'{"manifest": "m"}')},
        expected_params={"Bucket": BUCKET, "Key": LATEST},
    )

    assert S3Storage(client).get_bytes(BUCKET, LATEST) == b'{"manifest": "m"}'
