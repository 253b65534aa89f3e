"""A local backup folder (``export --out DIR``) and the files ``diff`` reads back: links,
half-written files, documents that are not what their name says, hostile items files."""

from __future__ import annotations

import gzip
import io
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from achieveit_sync.backup.diff import MAX_WHITE_SPACE, DamagedBackupError, _ItemReader
from achieveit_sync.backup.documents import DocumentError, LatestPointer
from achieveit_sync.backup.targets import LocalTarget, target_for
from achieveit_sync.errors import ConfigurationError
from achieveit_sync.storage import ObjectTooLargeError

DIGEST = "0" * 64


def pointer(**changes: Any) -> dict[str, Any]:
    manifest = "backups/P/2026/01/02/20260102T030405.000000Z/manifest.json"
    document = {
        "planId": "P",
        "manifest": manifest,
        "completedAt": "2026-01-02T03:05:00Z",
        "itemCount": 1,
        "contentSha256": DIGEST,
        "files": {
            "items.json.gz": {
                "key": manifest.replace("manifest.json", "items.json.gz"),
                "sha256": DIGEST,
                "bytes": 1,
            }
        },
    }
    return {**document, **changes}


def test_a_pointer_names_a_manifest_not_any_key_of_its_plan() -> None:
    assert LatestPointer.from_json(pointer(), "P").manifest.endswith("/manifest.json")
    for key in ("backups/P/latest.json", "backups/P/2026/01/02/x/items.json.gz"):
        with pytest.raises(DocumentError, match=r"is not a backup's manifest\.json"):
            LatestPointer.from_json(pointer(manifest=key), "P")
    with pytest.raises(DocumentError, match="dataFrom"):
        LatestPointer.from_json(pointer(dataFrom="backups/P/latest.json"), "P")


@pytest.mark.parametrize("link", ["backups", "backups/P"])
def test_a_folder_link_under_out_is_refused_for_writing_and_reading(
    tmp_path: Path, link: str
) -> None:
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    elsewhere.mkdir()
    (out / link).parent.mkdir(parents=True, exist_ok=True)
    os.symlink(elsewhere, out / link)
    target = LocalTarget(out)

    with pytest.raises(ConfigurationError, match="is a symbolic link"):
        target.write_json("backups/P/latest.json", {})
    with pytest.raises(ConfigurationError, match="is a symbolic link"):
        target.read_json("backups/P/latest.json")
    assert list(elsewhere.rglob("*")) == []


def test_a_file_link_is_replaced_and_a_failed_write_leaves_no_partial_file(
    tmp_path: Path,
) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious")
    target = LocalTarget(tmp_path / "out")
    (tmp_path / "out/backups/P").mkdir(parents=True)
    os.symlink(victim, tmp_path / "out/backups/P/latest.json")
    os.symlink(victim, tmp_path / "out/backups/P/items.json.gz.partial")

    target.write_json("backups/P/latest.json", {"a": 1})

    assert victim.read_text() == "precious"
    assert json.loads((tmp_path / "out/backups/P/latest.json").read_text()) == {"a": 1}

    class Failing(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def readinto(self, buffer: Any) -> int:
            raise OSError(27, "File too large")

    with pytest.raises(OSError, match="File too large"):
        target.write_file("backups/P/items.json.gz", Failing(), "application/gzip")  # type: ignore[arg-type]
    assert victim.read_text() == "precious"
    assert sorted(p.name for p in (tmp_path / "out/backups/P").iterdir()) == ["latest.json"]


def test_a_document_over_the_cap_is_refused_unread(tmp_path: Path) -> None:
    target = LocalTarget(tmp_path)
    (tmp_path / "backups/P").mkdir(parents=True)
    (tmp_path / "backups/P/latest.json").write_bytes(b" " * 101 + b"{}")

    with pytest.raises(ObjectTooLargeError):
        target.read_json("backups/P/latest.json", max_bytes=100)
    assert target.read_json("backups/P/latest.json", max_bytes=200) == {}


@pytest.mark.parametrize("out", ["", "  ", "S3://b/x", "s3:/b/x", "s3:b", "s3://", "s3:///x"])
def test_an_out_that_is_empty_or_almost_s3_is_refused(out: str) -> None:
    with pytest.raises(ConfigurationError, match="--out"):
        target_for(out)


def items(text: str, chunk: int | None = None) -> list[dict[str, Any]]:
    handle = io.StringIO(text)
    if chunk is not None:  # small reads: items split across them
        original = handle.read
        handle.read = lambda size=-1: original(min(size, chunk))  # type: ignore[method-assign]
    return list(_ItemReader(handle, Path("items.json.gz")).items())


def test_items_are_read_one_by_one_with_exact_numbers() -> None:
    text = '[\n{"id":"a","n":1e400},\n{"id":"b","big":' + "9" * 5000 + "}\n]\n"

    for chunk in (None, 1, 7):
        read = items(text, chunk)
        assert [i["id"] for i in read] == ["a", "b"]
        assert str(read[0]["n"]) == "1e400"
        assert str(read[1]["big"]) == "9" * 5000
    assert items("[]") == []


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('{"id": "x"}', "does not start with"),
        ("[1, 2]", "element 1 is not an item"),
        ('[{"id": "a"}, 2]', "element 2 is not an item"),
        ('[{"id": "a"} {"id": "b"}]', "no ',' or ']' after item 1"),
        ('[{"id": "a"}] x', "more after the list"),
        ('[{"id": "a"', "item 1 is not JSON"),
        ("[" + " " * (MAX_WHITE_SPACE + 1) + "]", "white space in a row"),
        ('[{"a":' + "[" * 100_000 + "]" * 100_000 + "}]", "nested too deeply"),
    ],
)
def test_a_file_that_is_not_a_list_of_items_says_why(text: str, reason: str) -> None:
    with pytest.raises(DamagedBackupError, match=re.escape(reason)):
        items(text)


def test_a_gzip_bomb_of_white_space_stops_early(tmp_path: Path) -> None:
    path = tmp_path / "items.json.gz"
    with gzip.open(path, "wt") as handle:
        handle.write("[" + " " * (10 * MAX_WHITE_SPACE) + "]")
    with (
        gzip.open(path, "rt", encoding="utf-8") as handle,
        pytest.raises(DamagedBackupError, match="white space"),
    ):
        list(_ItemReader(handle, path).items())
