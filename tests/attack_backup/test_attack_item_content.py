"""Items whose content is hostile: odd JSON numbers, non-UTF-8 bytes, huge pages, the key.

README: items.json.gz holds "the items exactly as the API returned them"; the key "never
appears in any object, log or output"; "memory does not grow with the plan".
"""

from __future__ import annotations

import gzip
import json
import tracemalloc
from typing import Any

import pytest

from tests.conftest import RECOGNISABLE_KEY

from .hostile import (
    Answer,
    everything_in_bucket,
    get,
    get_json,
    handler_for,
    invoke,
    item,
    json_answer,
    keys,
    make_bucket,
    outcomes,
)

pytestmark = pytest.mark.usefixtures("aws")


def raw(body: bytes, headers: dict[str, str] | None = None) -> Any:
    return lambda *_: (200, headers or {}, body)


def stored_items_text(s3: Any) -> str:
    latest = get_json(s3, "backups/A/latest.json")
    return gzip.decompress(get(s3, latest["files"]["items.json.gz"]["key"])).decode()


@pytest.mark.parametrize(
    "number", [b"1e400", b"-1e400", b"NaN", b"Infinity"], ids=["1e400", "-1e400", "NaN", "Inf"]
)
def test_items_json_is_strict_json_holding_the_numbers_returned(
    hostile: Any, monkeypatch: pytest.MonkeyPatch, number: bytes
) -> None:
    body = b'{"items": [{"id": "a", "currentValue": ' + number + b'}], "totalCount": 1}'
    server = hostile(raw(body))
    s3 = make_bucket()

    result, error = invoke(handler_for(monkeypatch, server.base_url, server.ca_file, "A"), {})

    [outcome] = outcomes(result, error)
    if outcome["status"] == "complete":
        text = stored_items_text(s3)

        def refuse(constant: str) -> None:
            raise ValueError(f"items.json.gz holds {constant}, which is not JSON")

        json.loads(text, parse_constant=refuse)  # what a strict reader does
        assert number.decode().lstrip("-") in text


def test_a_long_integer_is_backed_up_or_named_for_what_it_is(
    hostile: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    digits = b"1" + b"0" * 5000
    server = hostile(raw(b'{"items": [{"id": "a", "target": ' + digits + b'}], "totalCount": 1}'))
    s3 = make_bucket()

    result, error = invoke(handler_for(monkeypatch, server.base_url, server.ca_file, "A"), {})

    [outcome] = outcomes(result, error)
    assert "not JSON" not in (outcome["error"] or ""), outcome["error"]
    assert outcome["status"] == "complete"
    assert digits.decode() in stored_items_text(s3)


def test_bytes_that_are_not_utf8_are_not_silently_replaced(
    hostile: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = '{"items": [{"id": "a", "name": "caf\xe9"}], "totalCount": 1}'.encode("latin-1")
    server = hostile(raw(body))
    s3 = make_bucket()

    result, error = invoke(handler_for(monkeypatch, server.base_url, server.ca_file, "A"), {})

    [outcome] = outcomes(result, error)
    if outcome["status"] == "complete":
        assert "\ufffd" not in stored_items_text(s3) or outcome["warnings"], outcome


def test_a_latin1_page_that_says_so_is_decoded_by_its_charset(
    hostile: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = '{"items": [{"id": "a", "name": "caf\xe9"}], "totalCount": 1}'.encode("latin-1")
    server = hostile(raw(body, {"Content-Type": "application/json; charset=iso-8859-1"}))
    s3 = make_bucket()

    result, error = invoke(handler_for(monkeypatch, server.base_url, server.ca_file, "A"), {})

    assert [o["status"] for o in outcomes(result, error)] == ["complete"]
    assert json.loads(stored_items_text(s3))[0]["name"] == "caf\xe9"


def test_a_gzip_bomb_page_fails_its_plan_within_bounded_memory(
    hostile: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    inner = (
        b'{"items": [{"id": "a", "name": "' + b" " * (100 * 1024 * 1024) + b'"}], "totalCount": 1}'
    )
    bomb = gzip.compress(inner, 9)  # 0.1 MB on the wire, 100 MB inflated: 3x the page cap
    del inner
    server = hostile(raw(bomb, {"Content-Encoding": "gzip"}))
    make_bucket()
    handler = handler_for(monkeypatch, server.base_url, server.ca_file, "A")

    tracemalloc.start()
    try:
        result, error = invoke(handler, {})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert [o["status"] for o in outcomes(result, error)] == ["failed"]
    assert peak < 200 * 1024 * 1024  # README: the worst case peaks at 193 MB


@pytest.mark.parametrize("status", [200, 400, 403, 404, 500])
def test_an_answer_echoing_the_key_leaks_it_nowhere(
    hostile: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], status: int
) -> None:
    def respond(path: str, query: dict[str, str], headers: dict[str, str]) -> Answer:
        auth = headers.get("Authorization", "")
        text = f"you sent {auth!r}; key={auth.split()[-1]}; json={json.dumps(auth)}"
        return status, {"Content-Type": "text/plain"}, text.encode()

    server = hostile(respond)
    s3 = make_bucket()
    result, error = invoke(handler_for(monkeypatch, server.base_url, server.ca_file, "A"), {})

    out = capsys.readouterr()
    seen = out.out + out.err + repr(result) + repr(error) + str(error) + everything_in_bucket(s3)
    assert RECOGNISABLE_KEY not in seen


def test_a_server_that_puts_the_key_inside_items_does_not_get_it_stored(
    hostile: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def respond(path: str, query: dict[str, str], headers: dict[str, str]) -> Answer:
        key = headers.get("Authorization", "").split()[-1]
        return json_answer(
            {"items": [item(1, "A", name=f"echo {key}", externalId=key)], "totalCount": 1}
        )

    server = hostile(respond)
    s3 = make_bucket()
    invoke(handler_for(monkeypatch, server.base_url, server.ca_file, "A"), {})

    out = capsys.readouterr()
    assert RECOGNISABLE_KEY not in everything_in_bucket(s3) + out.out + out.err


def test_formulas_in_items_are_neutralised_in_the_csv_views(
    hostile: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    items = [
        item(1, "A", externalId='=HYPERLINK("http://evil","x")', name="=cmd|' /C calc'!A0"),
        item(2, "A", externalId="+1+1", name="@SUM(1+1)", description="-2+3"),
        item(3, "A", externalId="PX\n5", name="line1\r\nline2"),
    ]
    server = hostile(lambda *_: json_answer({"items": items, "totalCount": 3}))
    s3 = make_bucket()
    invoke(handler_for(monkeypatch, server.base_url, server.ca_file, "A"), {})

    latest = get_json(s3, "backups/A/latest.json")
    views = gzip.decompress(get(s3, latest["files"]["items.csv.gz"]["key"])).decode()
    views += get(s3, "templates/A/progress-updates.csv").decode()
    for dangerous in ("=HYPERLINK", "+1+1", "@SUM", "=cmd", "-2+3"):
        assert f",{dangerous}" not in views, dangerous
        assert f'"{dangerous}' not in views, dangerous


@pytest.mark.parametrize("field", ["id", "description"])
def test_long_ids_do_not_make_memory_grow_with_the_plan(
    hostile: Any, monkeypatch: pytest.MonkeyPatch, field: str
) -> None:
    count, size = 8000, 16000
    cache: dict[tuple[int, int], bytes] = {}

    def make(n: int) -> dict[str, Any]:
        value = f"{n:08d}" + "x" * size if field == "id" else "d" * size
        return item(n, "A", **{field: value})

    def respond(path: str, query: dict[str, str], headers: dict[str, str]) -> Answer:
        skip, take = int(query["skip"]), int(query["take"])
        if (skip, take) not in cache:
            cache.clear()
            page = [make(n) for n in range(skip, min(skip + take, count))]
            cache[(skip, take)] = json.dumps({"items": page, "totalCount": count}).encode()
        return 200, {}, cache[(skip, take)]

    server = hostile(respond)
    s3 = make_bucket()
    handler = handler_for(monkeypatch, server.base_url, server.ca_file, "A")
    tracemalloc.start()
    try:
        result, error = invoke(handler, {})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert [o["status"] for o in outcomes(result, error)] == ["complete"]
    assert "backups/A/latest.json" in keys(s3)
    assert peak < 128 * 1024 * 1024  # 128 MB of ids would be held if they were kept
