"""Lambda's side of a deployed stack, for tests on moto in server mode (moto would need Docker
to run a function).

* ``LambdaInvokeEndpoint``: the Lambda Invoke API (RequestResponse) on 127.0.0.1, running the
  real handlers in this process. Point boto3 at it with AWS_ENDPOINT_URL_LAMBDA. A handler
  that raises is answered as Lambda does: 200, ``X-Amz-Function-Error: Unhandled`` and the
  error as the payload.
* ``QueuePoller``: Lambda's SQS event source for one queue, in a thread: whatever arrives is
  handed to the handler as SQS batch events (``achieveit_sandbox.lambda_local.drain_queue``).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

from achieveit_sandbox.lambda_local import LocalLambdaContext, drain_queue

Handler = Callable[[dict[str, Any], Any], Any]


class LambdaInvokeEndpoint:
    def __init__(self, handlers: Mapping[str, Handler]) -> None:
        self.handlers = dict(handlers)
        self.invocations: list[tuple[str, dict[str, Any]]] = []
        endpoint = self

        class InvokeRequest(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                # /2015-03-31/functions/<name or ARN>/invocations
                parts = self.path.split("?")[0].strip("/").split("/")
                name = unquote(parts[2]).rsplit(":", 1)[-1] if len(parts) == 4 else ""
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                handler = endpoint.handlers.get(name)
                if handler is None:
                    self._answer(
                        404,
                        {"Type": "User", "Message": f"Function not found: {name}"},
                        {"x-amzn-ErrorType": "ResourceNotFoundException"},
                    )
                    return
                event = json.loads(body or b"{}")
                endpoint.invocations.append((name, event))
                try:
                    result = handler(event, LocalLambdaContext(function_name=name))
                except Exception as exc:  # noqa: BLE001 - Lambda reports any error this way
                    self._answer(
                        200,
                        {"errorMessage": str(exc), "errorType": type(exc).__name__},
                        {"X-Amz-Function-Error": "Unhandled"},
                    )
                    return
                self._answer(200, result, {"X-Amz-Executed-Version": "$LATEST"})

            def _answer(self, status: int, payload: Any, headers: dict[str, str]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for header, value in headers.items():
                    self.send_header(header, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # no access log on stderr

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), InvokeRequest)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> LambdaInvokeEndpoint:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


class QueuePoller:
    def __init__(self, sqs: Any, queue_url: str, handler: Handler, function_name: str) -> None:
        self._sqs = sqs
        self._queue_url = queue_url
        self._handler = handler
        self._function_name = function_name
        self._stopping = threading.Event()
        self._errors: list[BaseException] = []
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def start(self) -> QueuePoller:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop polling; re-raise what went wrong in the thread, if anything did."""
        self._stopping.set()
        self._thread.join(timeout=30)
        if self._errors:
            raise self._errors[0]

    def _poll(self) -> None:
        try:
            while not self._stopping.is_set():
                drain_queue(
                    self._sqs,
                    self._queue_url,
                    self._handler,
                    context_factory=lambda: LocalLambdaContext(function_name=self._function_name),
                )
                self._stopping.wait(0.1)  # how often an idle event source looks again
        except BaseException as exc:  # noqa: BLE001 - handed to the test in stop()
            self._errors.append(exc)
