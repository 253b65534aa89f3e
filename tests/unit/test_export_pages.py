"""How the client sizes export pages before parsing them (issue 10, point 8): the memory
estimate is an upper bound for every shape of JSON, the byte count never undercounts, and
a page nested too deeply is refused with a reason instead of escaping as a RecursionError."""

from __future__ import annotations

import json
import sys
import tracemalloc

import pytest
import responses
from achieveit_sync.api_key import StaticApiKey
from achieveit_sync.client import AchieveItClient, page_memory_estimate, utf8_length
from achieveit_sync.errors import PermanentApiError
from achieveit_sync.settings import ClientSettings

SHAPES = {
    "empty objects": "[" + ",".join(["{}"] * 50_000) + "]",
    "empty lists": "[" + ",".join(["[]"] * 50_000) + "]",
    "one-key objects, distinct keys": "[" + ",".join(f'{{"k{i}":1}}' for i in range(50_000)) + "]",
    "one object of many keys": "{" + ",".join(f'"k{i}":0' for i in range(50_000)) + "}",
    "floats": "[" + ",".join(["1.5"] * 50_000) + "]",
    "short distinct strings": "["
    + ",".join(f'"{chr(0x4E00 + i % 5000)}{i % 97}"' for i in range(50_000))
    + "]",
    "astral strings": "[" + ",".join(f'"{chr(0x1F600 + i % 50)}{i}"' for i in range(50_000)) + "]",
    "long text": json.dumps({"items": [{"description": "x" * 5000} for _ in range(200)]}),
    "items": json.dumps(
        {
            "items": [
                {"id": f"id-{i}", "name": f"Item {i}", "members": [], "target": 1.5, "level": 2}
                for i in range(5000)
            ],
            "totalCount": 5000,
        }
    ),
    "nested 900 deep": "[" * 900 + "]" * 900,
}


@pytest.mark.parametrize("shape", SHAPES)
def test_the_memory_estimate_bounds_what_parsing_takes(shape: str) -> None:
    text = SHAPES[shape]
    tracemalloc.start()
    try:
        parsed = json.loads(text)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    del parsed

    # The text is held while it is parsed, so the estimate includes it.
    assert page_memory_estimate(text) >= peak + sys.getsizeof(text)


@pytest.mark.parametrize(
    "raw",
    [b"plain", "caf\u00e9 \U0001f600".encode(), b"\xff\xfe bad bytes \x80", b"cut \xe2\x82"],
)
def test_the_byte_count_of_a_decoded_page_never_undercounts(raw: bytes) -> None:
    assert utf8_length(raw.decode("utf-8", errors="replace")) >= len(raw)


def test_a_page_nested_too_deeply_is_refused_with_a_reason() -> None:
    text = '{"items": [' + "[" * 100_000 + "]" * 100_000 + "]}"

    with responses.RequestsMock() as mocked:
        mocked.get("https://api.achieveit.com/exports/plans/P", body=text)
        client = AchieveItClient(ClientSettings(), StaticApiKey("k"))

        with pytest.raises(PermanentApiError, match="nested too deeply"):
            client.export_page("P")
