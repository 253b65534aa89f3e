"""A stand-in export endpoint for backup_page_bench.py: synthetic plans whose pages are
streamed item by item, so that a page of hundreds of megabytes costs this process nothing.

    python bench/backup_page_server.py --ca-file CA.pem --plans '{"P": {"items": 1500, ...}}'

The first output line is JSON with base_url, api_key and ca_file. A plan is described by
``items`` (how many), ``description_bytes`` (the size of each item's description),
``raw_utf8`` (send non-ASCII characters as UTF-8 rather than as JSON escapes, as any
server may) and ``astral`` (put one emoji, a character outside the Basic Multilingual
Plane, into the first item of every page), ``empty_objects`` (a ``members`` list of that
many ``{}`` in every item: the JSON that expands most when parsed). Pages honour ``skip``
and ``take`` (at most 1500) like AchieveIt; ``GET /_requests`` counts the export requests
per plan.
"""

from __future__ import annotations

import argparse
import json
import ssl
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import trustme

API_KEY = "BENCH-page-server-key"
MAX_TAKE = 1500


class PageHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    plans: ClassVar[dict[str, dict[str, Any]]] = {}
    requests_seen: ClassVar[Counter[str]] = Counter()
    lock: ClassVar[threading.Lock] = threading.Lock()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path == "/_requests":
            with self.lock:
                self._send_small(200, dict(self.requests_seen))
            return
        if self.headers.get("Authorization") != f"API-KEY {API_KEY}":
            self._send_small(401, {"message": "bad key"})
            return
        plan_id = url.path.removeprefix("/exports/plans/")
        plan = self.plans.get(plan_id)
        if plan is None:
            self._send_small(404, {"message": f"Plan '{plan_id}' was not found"})
            return
        with self.lock:
            self.requests_seen[plan_id] += 1
        query = parse_qs(url.query)
        skip = int(query.get("skip", ["0"])[0])
        take = min(int(query.get("take", ["100"])[0]), MAX_TAKE)
        self.send_response(200)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for chunk in page_chunks(plan, skip, take):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client stopped reading a page over its cap

    def _send_small(self, status: int, document: object) -> None:
        body = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def page_chunks(plan: dict[str, Any], skip: int, take: int) -> Iterator[bytes]:
    total = int(plan["items"])
    raw_utf8 = bool(plan.get("raw_utf8"))
    yield b'{"items": ['
    for index in range(skip, min(skip + take, total)):
        text = json.dumps(item(plan, index, first_on_page=index == skip), ensure_ascii=not raw_utf8)
        yield (b"" if index == skip else b", ") + text.encode()
    yield b'], "totalCount": %d}' % total


def item(plan: dict[str, Any], index: int, *, first_on_page: bool) -> dict[str, Any]:
    description = "x" * int(plan.get("description_bytes", 200))
    if plan.get("astral") and first_on_page:
        description = "\N{GRINNING FACE}" + description[4:]  # the same byte length in UTF-8
    return {
        "id": f"item-{index:08d}",
        "externalId": f"EXT-{index:08d}",
        "sequenceId": str(index + 1),
        "level": 1,
        "name": f"Item {index + 1}",
        "description": description,
        "statusName": "On Track",
        "hasMetric": False,
        "currentValue": None,
        "target": None,
        "baseline": None,
        "start": "2026-01-05",
        "due": "2026-12-31",
        "assignedToFullName": "Maria Lopez",
        "assignedToEmailAddress": "maria.lopez@example.org",
        "assignedByFullName": "James Okafor",
        "members": [{}] * int(plan.get("empty_objects", 0)),
        "created": "2026-01-05T09:00:00Z",
        "lastUpdated": "2026-01-05T09:00:00Z",
        "updates": 0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ca-file", type=Path, required=True)
    parser.add_argument("--plans", required=True, help="JSON: plan id -> shape")
    args = parser.parse_args()
    PageHandler.plans = json.loads(args.plans)
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(args.ca_file))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    server = ThreadingHTTPServer(("127.0.0.1", 0), PageHandler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    port = server.server_address[1]
    info = {
        "base_url": f"https://127.0.0.1:{port}",
        "api_key": API_KEY,
        "ca_file": str(args.ca_file),
    }
    print(json.dumps(info), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        sys.stdout.flush()


if __name__ == "__main__":
    main()
