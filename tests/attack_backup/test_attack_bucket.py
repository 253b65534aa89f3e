"""Someone or something changed the backups bucket; two runs overlap.

README: "latest.json never points at missing or altered data"; an unchanged plan reuses the
previous data "only after reading that data through: every file must still be there, match
the SHA-256 and size its manifest records"; "A latest.json that cannot be read, or is not a
pointer to the plan's own backup, is logged and reported as a warning for that plan, which
is then backed up from scratch"; "backups/<planId>/latest.json: the newest complete backup";
"memory does not grow".
"""

from __future__ import annotations

import json
import threading
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.session import Session

from .hostile import (
    BUCKET,
    Answer,
    backed_up_items,
    get,
    get_json,
    handler_for,
    invoke,
    item,
    keys,
    make_bucket,
    outcomes,
    paged,
)

pytestmark = pytest.mark.usefixtures("aws")


class TwoVersions:
    """Plan A backed up twice: v1 ("On Track"), then v2 (its first item "Achieved")."""

    def __init__(self, handler: Any, s3: Any, plans: dict[str, list[Any]]) -> None:
        self.handler, self.s3, self.plans = handler, s3, plans
        assert invoke(handler, {})[1] is None
        self.v1 = get_json(s3, "backups/A/latest.json")
        plans["A"][0] = {**plans["A"][0], "statusName": "Achieved"}
        assert invoke(handler, {})[1] is None
        self.v2 = get_json(s3, "backups/A/latest.json")
        assert self.v1["manifest"] != self.v2["manifest"]

    def put_latest(self, document: Any) -> None:
        body = document if isinstance(document, bytes) else json.dumps(document).encode()
        self.s3.put_object(Bucket=BUCKET, Key="backups/A/latest.json", Body=body)

    def run_a(self) -> dict[str, Any]:
        result, error = invoke(self.handler, {"plans": ["A"]})
        [outcome] = outcomes(result, error)
        return outcome

    def latest_items(self) -> list[Any]:
        return backed_up_items(self.s3, get_json(self.s3, "backups/A/latest.json")["manifest"])


@pytest.fixture
def two_versions(hostile: Any, monkeypatch: pytest.MonkeyPatch) -> TwoVersions:
    plans = {"A": [item(n, "A") for n in range(1, 6)], "B": [item(n, "B") for n in range(1, 4)]}
    server = hostile(paged(plans))
    s3 = make_bucket()
    return TwoVersions(handler_for(monkeypatch, server.base_url, server.ca_file, "A,B"), s3, plans)


def test_latest_naming_other_files_than_its_manifest_is_not_trusted(
    two_versions: TwoVersions,
) -> None:
    t = two_versions
    t.put_latest({**t.v2, "files": t.v1["files"]})

    outcome = t.run_a()

    assert t.latest_items()[0]["statusName"] == "Achieved", outcome
    assert outcome["warnings"], outcome


def test_latest_whose_digest_disagrees_with_its_manifest_is_not_trusted(
    two_versions: TwoVersions,
) -> None:
    t = two_versions
    t.put_latest({**t.v1, "contentSha256": t.v2["contentSha256"]})

    outcome = t.run_a()

    assert t.latest_items()[0]["statusName"] == "Achieved", outcome


@pytest.mark.parametrize("damage", ["deleted", "garbage"])
def test_a_damaged_previous_manifest_is_reported(two_versions: TwoVersions, damage: str) -> None:
    t = two_versions
    if damage == "deleted":
        t.s3.delete_object(Bucket=BUCKET, Key=t.v2["manifest"])
    else:
        t.s3.put_object(Bucket=BUCKET, Key=t.v2["manifest"], Body=b"[" * 100_000)

    outcome = t.run_a()

    manifest = get_json(t.s3, get_json(t.s3, "backups/A/latest.json")["manifest"])
    named = [k for k in (manifest.get("dataFrom"), manifest.get("previousBackup")) if k]
    readable = []
    for key in named:
        try:
            readable.append(isinstance(json.loads(get(t.s3, key)), dict))
        except (ClientError, ValueError, RecursionError):
            readable.append(False)
    assert all(readable) or outcome["warnings"], (outcome, named)


def test_latest_pointing_at_itself_is_not_a_pointer(two_versions: TwoVersions) -> None:
    t = two_versions
    t.put_latest({**t.v2, "manifest": "backups/A/latest.json"})

    outcome = t.run_a()

    manifest = get_json(t.s3, get_json(t.s3, "backups/A/latest.json")["manifest"])
    assert manifest.get("dataFrom") != "backups/A/latest.json"
    assert outcome["warnings"]


def test_a_huge_latest_json_is_refused_within_bounded_memory(two_versions: TwoVersions) -> None:
    t = two_versions
    t.put_latest(b" " * (120 * 1024 * 1024) + json.dumps(t.v2).encode())

    tracemalloc.start()
    try:
        outcome = t.run_a()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert outcome["status"] in ("complete", "unchanged")
    assert peak < 64 * 1024 * 1024, f"{peak / 1e6:.0f} MB to read a pointer"


@pytest.mark.parametrize(
    "damage",
    [
        b"[" * 200_000 + b"]" * 200_000,
        b'{"itemCount": 1' + b"0" * 5000 + b"}",
        "a copy of the manifest",
        "a files entry that climbs",
        "bytes NaN",
        "bytes true",
    ],
    ids=["deep", "long-int", "manifest-copy", "extra-file", "nan-bytes", "bool-bytes"],
)
def test_a_damaged_latest_json_is_a_warning_and_a_fresh_backup(
    two_versions: TwoVersions, damage: Any
) -> None:
    t = two_versions
    if damage == "a copy of the manifest":
        damage = get(t.s3, t.v2["manifest"])
    elif damage == "a files entry that climbs":
        files = {
            **t.v2["files"],
            "../../../templates/A/evil": {
                "key": "templates/A/progress-updates.csv",
                "sha256": "0" * 64,
                "bytes": 1,
            },
        }
        damage = {**t.v2, "files": files}
    elif damage in ("bytes NaN", "bytes true"):
        document = json.loads(json.dumps(t.v2))
        document["files"]["items.json.gz"]["bytes"] = float("nan") if "NaN" in damage else True
        damage = json.dumps(document).encode()
    t.put_latest(damage)

    outcome = t.run_a()

    assert outcome["status"] == "complete"
    assert outcome["warnings"]
    assert t.latest_items()[0]["statusName"] == "Achieved"
    assert keys(t.s3, "templates/") == [
        "templates/A/progress-updates.csv",
        "templates/B/progress-updates.csv",
    ]


def test_a_manifest_copied_from_another_plan_is_not_reused(two_versions: TwoVersions) -> None:
    t = two_versions
    b_manifest = get_json(t.s3, get_json(t.s3, "backups/B/latest.json")["manifest"])
    fake_key = t.v2["manifest"].replace("manifest.json", "copied/manifest.json")
    fake = {
        **b_manifest,
        "planId": "A",
        "manifestKey": fake_key,
        "contentSha256": t.v2["contentSha256"],
    }
    t.s3.put_object(Bucket=BUCKET, Key=fake_key, Body=json.dumps(fake).encode())
    t.put_latest({**t.v2, "manifest": fake_key, "files": b_manifest["files"]})

    outcome = t.run_a()

    assert outcome["warnings"]
    assert {i["id"] for i in t.latest_items()} == {f"id-A-{n:06d}" for n in range(1, 6)}


def test_latest_json_never_moves_back_to_an_older_backup(
    hostile: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    items = [item(n, "A") for n in range(1, 4)]
    gate, lock, first = threading.Event(), threading.Lock(), [True]

    def respond(path: str, query: dict[str, str], headers: dict[str, str]) -> Answer:
        with lock:
            is_first, first[0] = first[0], False
            body = json.dumps({"items": items, "totalCount": len(items)}).encode()
        if is_first:
            gate.wait(20)  # the scheduled run is slow to get its page
        return 200, {}, body

    server = hostile(respond)
    s3 = make_bucket()
    handler = handler_for(monkeypatch, server.base_url, server.ca_file, "A")
    scheduled = threading.Thread(target=lambda: invoke(handler, {}))
    scheduled.start()
    time.sleep(1.0)
    items[0] = {**items[0], "statusName": "Achieved"}  # the plan changes
    invoke(handler, {"plans": ["A"]})  # the on-demand run starts later and finishes first
    newest = get_json(s3, "backups/A/latest.json")
    gate.set()
    scheduled.join(30)

    final = get_json(s3, "backups/A/latest.json")
    assert final["manifest"] >= newest["manifest"]
    assert backed_up_items(s3, final["manifest"])[0]["statusName"] == "Achieved"


def deny_s3_puts(monkeypatch: pytest.MonkeyPatch, refuse: Callable[[str], bool]) -> None:
    """Every S3 client created from now on refuses PutObject for keys ``refuse`` picks."""

    def deny(params: dict[str, Any], **_: Any) -> None:
        if refuse(params.get("Key", "")):
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "denied"}}, "PutObject")

    original = Session.create_client

    def create_client(self: Session, *args: Any, **kwargs: Any) -> Any:
        client = original(self, *args, **kwargs)
        if (args and args[0] == "s3") or kwargs.get("service_name") == "s3":
            for operation in ("PutObject", "CreateMultipartUpload"):
                client.meta.events.register(f"before-parameter-build.s3.{operation}", deny)
        return client

    boto3.DEFAULT_SESSION = None
    monkeypatch.setattr(Session, "create_client", create_client)


@pytest.mark.parametrize(
    ("denied", "named"),
    [("templates/", "the progress-update template"), ("history/", "the plan history snapshot")],
)
def test_a_template_or_snapshot_that_cannot_be_written_does_not_fail_a_complete_backup(
    hostile: Any, monkeypatch: pytest.MonkeyPatch, denied: str, named: str
) -> None:
    server = hostile(paged({"A": [item(1, "A")]}))
    s3 = make_bucket()
    handler = handler_for(monkeypatch, server.base_url, server.ca_file, "A")
    deny_s3_puts(monkeypatch, lambda key: key.startswith(denied))

    result, error = invoke(handler, {})

    [outcome] = outcomes(result, error)
    assert "backups/A/latest.json" in keys(s3)
    assert outcome["status"] == "complete", outcome
    assert any(
        warning.startswith(named) and "could not be written" in warning
        for warning in outcome["warnings"]
    ), outcome


def test_an_incomplete_run_leaves_the_template_of_the_last_complete_one(
    hostile: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    items = [item(n, "A") for n in range(1, 3001)]
    short = [False]

    def respond(path: str, query: dict[str, str], headers: dict[str, str]) -> Answer:
        skip, take = int(query["skip"]), int(query["take"])
        page = [] if short[0] and skip >= 1500 else items[skip : skip + take]
        return 200, {}, json.dumps({"items": page, "totalCount": len(items)}).encode()

    server = hostile(respond)
    s3 = make_bucket()
    handler = handler_for(monkeypatch, server.base_url, server.ca_file, "A")
    invoke(handler, {})
    before = (get(s3, "templates/A/progress-updates.csv"), get(s3, "backups/A/latest.json"))
    short[0] = True

    result, error = invoke(handler, {})

    assert [o["status"] for o in outcomes(result, error)] == ["incomplete"]
    assert (get(s3, "templates/A/progress-updates.csv"), get(s3, "backups/A/latest.json")) == before
