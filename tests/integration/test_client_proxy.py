"""Behind an HTTPS_PROXY (a CONNECT tunnel, as corporate networks and VPC egress proxies
do), the client keeps its TLS settings: the extra CA it trusts and TLS 1.2 at least."""

from __future__ import annotations

import contextlib
import select
import socket
import ssl
import threading
from collections.abc import Iterator

import pytest
from achieveit_sync.errors import TransportSecurityError

from tests.integration.conftest import ClientFactory, SandboxFactory


class ConnectProxy:
    """A minimal HTTP CONNECT proxy on 127.0.0.1 that records the tunnels it opened."""

    def __init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self.tunnels: list[str] = []
        self._stopping = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._stopping.set()
        self._server.close()

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._tunnel, args=(client,), daemon=True).start()

    def _tunnel(self, client: socket.socket) -> None:
        with contextlib.closing(client):
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = client.recv(4096)
                if not chunk:
                    return
                head += chunk
            method, target, _ = head.split(b"\r\n", 1)[0].decode().split(" ", 2)
            if method != "CONNECT":
                client.sendall(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n")
                return
            self.tunnels.append(target)
            host, port = target.rsplit(":", 1)
            with socket.create_connection((host, int(port))) as upstream:
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                _relay(client, upstream)


def _relay(one: socket.socket, other: socket.socket) -> None:
    peers = {one: other, other: one}
    while True:
        readable, _, _ = select.select(list(peers), [], [], 10)
        if not readable:
            return
        for sock in readable:
            data = sock.recv(65536)
            if not data:
                return
            peers[sock].sendall(data)


@pytest.fixture
def proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[ConnectProxy]:
    server = ConnectProxy()
    for name in ("NO_PROXY", "no_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", server.url)
    monkeypatch.setenv("https_proxy", server.url)
    yield server
    server.close()


def test_the_tunnelled_connection_trusts_the_extra_ca(
    proxy: ConnectProxy, start_sandbox: SandboxFactory, client_for: ClientFactory
) -> None:
    # The environment's REQUESTS_CA_BUNDLE (the system store) does not hold the sandbox CA:
    # only the client's own TLS context, carried into the tunnel, can trust it.
    sandbox = start_sandbox()

    page = client_for(sandbox).export_page("PX-2027", take=2)

    assert len(page.items) == 2
    assert proxy.tunnels == [f"127.0.0.1:{sandbox.base_url.rsplit(':', 1)[1]}"]


def test_the_tunnelled_connection_still_refuses_tls_below_1_2(
    proxy: ConnectProxy, start_sandbox: SandboxFactory, client_for: ClientFactory
) -> None:
    old_tls = start_sandbox(tls_versions=(ssl.TLSVersion.TLSv1_1, ssl.TLSVersion.TLSv1_1))

    with pytest.raises(TransportSecurityError):
        client_for(old_tls, max_attempts=1).export_page("PX-2027")

    assert len(proxy.tunnels) == 1


class RefusingProxy(ConnectProxy):
    """A proxy that wants credentials: every CONNECT is answered 407."""

    def _tunnel(self, client: socket.socket) -> None:
        with contextlib.closing(client):
            client.recv(4096)
            client.sendall(
                b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n"
            )


@pytest.mark.parametrize("proxy_answers", ["nothing (no proxy listens)", "407"])
def test_a_proxy_that_never_opens_the_tunnel_leaves_rows_unsent_not_ambiguous(
    start_sandbox: SandboxFactory,
    client_for: ClientFactory,
    monkeypatch: pytest.MonkeyPatch,
    proxy_answers: str,
) -> None:
    from datetime import date

    from achieveit_sync.errors import RetryableApiError
    from achieveit_sync.updates import ProgressUpdate, Status

    sandbox = start_sandbox()
    if proxy_answers == "407":
        refusing = RefusingProxy()
        url = refusing.url
    else:
        with socket.create_server(("127.0.0.1", 0)) as closed:
            url = f"http://127.0.0.1:{closed.getsockname()[1]}"
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", url)
    monkeypatch.setenv("https_proxy", url)

    # Not AmbiguousDeliveryError: nothing reached AchieveIt, so the rows can be sent later.
    with pytest.raises(RetryableApiError):
        client_for(sandbox).submit_updates(
            "via-proxy.json", [ProgressUpdate("PX-1.1", Status.ON_TRACK, date(2026, 11, 1))]
        )

    assert sandbox.recorded_requests() == []
