"""moto's S3 answering as real S3 does for a role without an unconditioned s3:ListBucket.

moto enforces no IAM: a GET or HEAD of a missing key is always a 404 there. Real S3 answers
403 AccessDenied instead when the caller may not s3:ListBucket, and a ListBucket grant under
an s3:prefix condition does not count for a GET or HEAD (they carry no s3:prefix). This hook,
registered on a boto3 session before its clients are made, reproduces that:

* GetObject / HeadObject of a key (or version) that does not exist: 403;
* ListObjectsV2: allowed only under ``listable_prefixes`` (the s3:prefix condition); with
  none, refused (no ListBucket at all);
* ``unreadable_keys``: objects that exist but the role may not read (a bucket policy, an
  SSE-KMS key it may not use): 403 as well.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError

_READS = ("GetObject", "HeadObject")
_CONTEXT_KEY = "s3_policy_params"


def without_unconditioned_list_bucket(
    session: Any, *, listable_prefixes: Sequence[str] = (), unreadable_keys: Sequence[str] = ()
) -> None:
    """Make S3 clients created from ``session`` from now on behave as under that policy."""
    # An unhooked client, to ask moto what really exists.
    probe = session.client("s3")
    events = session.events

    def remember_params(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context[_CONTEXT_KEY] = dict(params)

    def answer(model: Any, context: dict[str, Any], **_: Any) -> Any:
        params = context.get(_CONTEXT_KEY, {})
        if model.name == "ListObjectsV2":
            prefix = params.get("Prefix", "")
            if any(prefix.startswith(allowed) for allowed in listable_prefixes):
                return None
            return _denied(403, "AccessDenied")
        if params.get("Key") in unreadable_keys:
            return _denied(403, "403" if model.name == "HeadObject" else "AccessDenied")
        lookup = {k: params[k] for k in ("Bucket", "Key", "VersionId") if k in params}
        try:
            probe.head_object(**lookup)
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("404", "NoSuchKey", "NoSuchVersion"):
                return _denied(403, "403" if model.name == "HeadObject" else "AccessDenied")
            raise
        return None

    for operation in (*_READS, "ListObjectsV2"):
        events.register(f"before-parameter-build.s3.{operation}", remember_params)
        events.register(f"before-call.s3.{operation}", answer)


def _denied(status: int, code: str) -> tuple[AWSResponse, dict[str, Any]]:
    response = AWSResponse("https://s3.amazonaws.com/", status, {}, None)
    parsed = {
        "Error": {"Code": code, "Message": "Access Denied"},
        "ResponseMetadata": {"HTTPStatusCode": status, "HTTPHeaders": {}},
    }
    return response, parsed
