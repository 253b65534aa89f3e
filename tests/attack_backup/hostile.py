"""A hostile AchieveIt: an HTTPS server on 127.0.0.1 (trustme CA) whose answers a test
scripts per request, and helpers to run the export handler and the CLI against it."""

from __future__ import annotations

import gzip
import json
import os
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import trustme

from tests.conftest import RECOGNISABLE_KEY, FakeLambdaContext, load_handler

BUCKET = "attack-backups-bucket"
SECRET = "achieveit-sync/api-key"

Answer = tuple[int, dict[str, str], bytes]
Responder = Callable[[str, dict[str, str], dict[str, str]], Answer]


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    authorization: str | None


@dataclass
class HostileServer:
    responder: Responder
    tmp: Path
    seen: list[Seen] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)

    def start(self) -> HostileServer:
        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1", "localhost")
        self.ca_file = self.tmp / "hostile-ca.pem"
        ca.cert_pem.write_to_path(str(self.ca_file))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        cert.configure_cert(context)
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                server.seen.append(
                    Seen("GET", parts.path, query, self.headers.get("Authorization"))
                )
                try:
                    status, headers, body = server.responder(
                        parts.path, query, dict(self.headers.items())
                    )
                except ConnectionAbortedError:
                    self.close_connection = True
                    return
                trickle = float(headers.pop("X-Trickle-Seconds", "0"))
                self.send_response(status)
                headers = {"Content-Type": "application/json", **headers}
                for name, value in headers.items():
                    self.send_header(name, value)
                if "Content-Length" not in headers:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if not trickle:
                    self.wfile.write(body)
                    return
                for i in range(len(body)):  # a slow loris: one byte at a time
                    if server.stopping.is_set():
                        self.close_connection = True
                        return
                    self.wfile.write(body[i : i + 1])
                    self.wfile.flush()
                    time.sleep(trickle)

            do_POST = do_GET  # noqa: N815

        class Quiet(ThreadingHTTPServer):
            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a client that hangs up is part of the game

        self.httpd = Quiet(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.base_url = f"https://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def exports(self) -> list[Seen]:
        return [s for s in self.seen if s.path.startswith("/exports/")]


def item(n: int, plan: str = "P", **extra: Any) -> dict[str, Any]:
    """An export item shaped like the sandbox's."""
    base = {
        "id": f"id-{plan}-{n:06d}",
        "externalId": f"{plan}-{n:06d}",
        "sequenceId": str(n),
        "level": 1,
        "name": f"Item {n}",
        "description": "",
        "statusName": "On Track",
        "hasMetric": False,
        "currentValue": None,
        "target": None,
        "baseline": None,
        "start": "2026-01-01",
        "due": "2026-12-31",
        "assignedToFullName": "A Person",
        "assignedToEmailAddress": "a@example.org",
        "assignedByFullName": "B Person",
        "members": [],
        "created": "2026-01-05T09:00:00Z",
        "lastUpdated": "2026-01-05T09:00:00Z",
        "updates": 0,
    }
    base.update(extra)
    return base


def paged(plans: dict[str, list[Any]], total: dict[str, Any] | None = None) -> Responder:
    """A well-behaved pager over fixed item lists (``total`` overrides totalCount)."""

    def respond(path: str, query: dict[str, str], headers: dict[str, str]) -> Answer:
        plan_id = path.rsplit("/", 1)[-1]
        if plan_id not in plans:
            return 404, {}, b'{"message": "plan not found"}'
        items = plans[plan_id]
        skip, take = int(query.get("skip", 0)), int(query.get("take", 1500))
        count = (total or {}).get(plan_id, len(items))
        return (
            200,
            {},
            json.dumps({"items": items[skip : skip + take], "totalCount": count}).encode(),
        )

    return respond


def json_answer(obj: Any) -> Answer:
    return 200, {}, json.dumps(obj).encode()


# -- the export Lambda against a server --------------------------------------------------------


def make_bucket() -> Any:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    return s3


def handler_for(
    monkeypatch: Any,
    base_url: str,
    ca_file: Path,
    plan_ids: str = "",
    key: str = RECOGNISABLE_KEY,
    **env: str,
) -> Any:
    secrets = boto3.client("secretsmanager", region_name="us-east-1")
    try:
        secrets.create_secret(Name=SECRET, SecretString=key)
    except secrets.exceptions.ResourceExistsException:
        secrets.put_secret_value(SecretId=SECRET, SecretString=key)
    settings = {
        "BACKUP_BUCKET": BUCKET,
        "PLAN_IDS": plan_ids,
        "ACHIEVEIT_API_KEY_SECRET": SECRET,
        "ACHIEVEIT_BASE_URL": base_url,
        "ACHIEVEIT_CA_BUNDLE": str(ca_file),
        "ACHIEVEIT_MAX_ATTEMPTS": "2",
        **env,
    }
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    return load_handler("export")


def invoke(
    handler: Any, event: Any, context: Any = None
) -> tuple[dict[str, Any] | None, BaseException | None]:
    """The handler's result, or the exception it raised (as Lambda would record it)."""
    try:
        return handler.lambda_handler(event, context or FakeLambdaContext()), None
    except BaseException as error:  # noqa: BLE001 - we want to see everything
        return None, error


def outcomes(result: dict[str, Any] | None, error: BaseException | None) -> list[dict[str, Any]]:
    if result is not None:
        return list(result["plans"])
    run = getattr(error, "run", None)
    assert run is not None, f"the run ended with {error!r}, not a per-plan result"
    return list(run.as_dict()["plans"])


def keys(s3: Any, prefix: str = "") -> list[str]:
    out: list[str] = []
    token: dict[str, str] = {}
    while True:
        page = s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix, **token)
        out += [o["Key"] for o in page.get("Contents", [])]
        if not page.get("IsTruncated"):
            return sorted(out)
        token = {"ContinuationToken": page["NextContinuationToken"]}


def get(s3: Any, key: str) -> bytes:
    return bytes(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())


def get_json(s3: Any, key: str) -> Any:
    return json.loads(get(s3, key))


def backed_up_items(s3: Any, manifest_key: str) -> list[Any]:
    manifest = get_json(s3, manifest_key)
    return list(json.loads(gzip.decompress(get(s3, manifest["files"]["items.json.gz"]["key"]))))


def everything_in_bucket(s3: Any) -> str:
    texts = []
    for key in keys(s3):
        body = get(s3, key)
        if body[:2] == b"\x1f\x8b":
            body = gzip.decompress(body)
        texts.append(key + "\n" + body.decode("utf-8", "replace"))
    return "\n".join(texts)


# -- the command line --------------------------------------------------------------------------

CLI = str(Path(sys.executable).with_name("achieveit-sync"))


def cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120, **kw: Any
) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, **(env or {})}
    environment.pop("ACHIEVEIT_SYNC_DEBUG", None)
    return subprocess.run(
        [CLI, *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=environment,
        **kw,
    )


def cli_env(base_url: str, ca_file: Path, key: str = RECOGNISABLE_KEY) -> dict[str, str]:
    return {
        "ACHIEVEIT_BASE_URL": base_url,
        "ACHIEVEIT_API_KEY": key,
        "ACHIEVEIT_CA_BUNDLE": str(ca_file),
        "ACHIEVEIT_MAX_ATTEMPTS": "2",
    }


def no_trace(result: subprocess.CompletedProcess[str]) -> None:
    text = result.stdout + result.stderr
    assert "Traceback" not in text, text[-3000:]
    assert RECOGNISABLE_KEY not in text
