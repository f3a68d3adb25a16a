"""The reply path's HTTP client (providers/wire.py), over real sockets: kept-alive
connections, and failures sorted into "never left" and "may have been acted on"."""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from antirelou.providers import wire
from antirelou.providers.wire import AnswerLost, NotSent, Wire
from tests.fakes.canned import Canned

FORM = {"To": "+33612345678", "Body": "Non, c'est non."}


def test_a_form_goes_out_and_the_json_answer_comes_back() -> None:
    with Canned(201, '{"sid": "SM1"}') as server:
        client = Wire(
            server.base_url + "/api/",
            timeout=5,
            headers={"Accept": "application/json"},
            basic_auth=("AC1", "secret"),
        )
        answer = client.post_form("/Messages.json", FORM)
        client.close()
    assert (answer.status, answer.is_success, answer.json_object()) == (201, True, {"sid": "SM1"})
    (received,) = server.received
    assert (received.method, received.path) == ("POST", "/api/Messages.json")
    assert received.body == b"To=%2B33612345678&Body=Non%2C+c%27est+non."
    assert received.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert received.headers["Authorization"] == "Basic QUMxOnNlY3JldA=="
    assert received.headers["Accept"] == "application/json"


def test_a_query_goes_out_on_get() -> None:
    with Canned(200, "[]") as server:
        client = Wire(server.base_url, timeout=5)
        answer = client.get("/list", {"To": "+33612345678", "PageSize": "50"})
        client.close()
    assert server.received[0].path == "/list?To=%2B33612345678&PageSize=50"
    assert answer.json_object() == {}  # a list is no object


def test_a_json_body_goes_out_as_utf8_json() -> None:
    payload = {"textMessage": {"text": "Non, c'est non. É"}, "phoneNumbers": ["+33612345678"]}
    with Canned(202, "{}") as server:
        client = Wire(server.base_url + "/3rdparty/v1", timeout=5)
        client.post_json("/message", payload)
        client.get("/message/antirelou-1")
        client.close()
    sent, looked_up = server.received
    assert (sent.method, sent.path, looked_up.path) == (
        "POST",
        "/3rdparty/v1/message",
        "/3rdparty/v1/message/antirelou-1",
    )
    assert sent.headers["Content-Type"] == "application/json"
    assert json.loads(sent.body.decode("utf-8")) == payload


def test_connections_are_kept_alive() -> None:
    with Canned(200, "{}") as server:
        client = Wire(server.base_url, timeout=5)
        for _ in range(5):
            client.post_form("/", FORM)
        client.close()
    assert (len(server.received), server.connections) == (5, 1)


def test_a_connection_the_server_dropped_is_not_used_again() -> None:
    """Writing a request on it would lose the request: it is seen closed and replaced."""
    with Canned(200, '{"ok": 1}', close_after_answer=True) as server:
        client = Wire(server.base_url, timeout=5)
        client.post_form("/", FORM)
        time.sleep(0.2)  # idle, as between two replies; the server's close arrives
        answer = client.post_form("/", FORM)
        client.close()
    assert answer.json_object() == {"ok": 1}
    assert (len(server.received), server.connections) == (2, 2)


def test_an_idle_connection_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wire, "KEEPALIVE_EXPIRY", 0.0)
    with Canned(200, "{}") as server:
        client = Wire(server.base_url, timeout=5)
        client.post_form("/", FORM)
        client.post_form("/", FORM)
        client.close()
    assert server.connections == 2


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_a_refused_connection_was_not_sent() -> None:
    with pytest.raises(NotSent, match="ConnectionRefusedError"):
        Wire(f"http://127.0.0.1:{free_port()}", timeout=5).post_form("/", FORM)


@contextmanager
def listening(drop: bool) -> Iterator[str]:
    """A server that takes the request and never answers: it hangs, or with `drop` it
    closes the connection without a word."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()

        def read_and_close() -> None:
            connection, _ = server.accept()
            connection.recv(65536)
            connection.close()

        if drop:
            threading.Thread(target=read_and_close, daemon=True).start()
        yield f"http://127.0.0.1:{server.getsockname()[1]}"


@pytest.mark.parametrize("closes", [False, True], ids=["hangs", "closes"])
def test_a_request_that_left_is_never_called_not_sent(closes: bool) -> None:
    with listening(closes) as url, pytest.raises(AnswerLost):
        Wire(url, timeout=0.3).post_form("/", FORM)


def test_an_answer_too_large_is_lost(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wire, "MAX_BODY", 10)
    with Canned(200, '{"sid": "SM0123456789"}') as server, pytest.raises(AnswerLost):
        Wire(server.base_url, timeout=5).post_form("/", FORM)


# --- TLS --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def serving_tls(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    return context


def test_an_untrusted_certificate_is_refused_before_sending(
    certificate: tuple[Path, Path],
) -> None:
    with Canned(201, "{}", tls=serving_tls(certificate)) as server:
        with pytest.raises(NotSent, match="CERTIFICATE_VERIFY_FAILED"):
            Wire(server.base_url, timeout=5).post_form("/", FORM)
        assert server.received == []


def test_a_trusted_certificate_carries_the_request(certificate: tuple[Path, Path]) -> None:
    trusting = ssl.create_default_context(cafile=str(certificate[0]))
    with Canned(201, '{"sid": "SM1"}', tls=serving_tls(certificate)) as server:
        client = Wire(server.base_url, timeout=5, ssl_context=trusting)
        assert client.post_form("/", FORM).json_object() == {"sid": "SM1"}
        client.close()


# --- proxies ----------------------------------------------------------------------------


class ConnectProxy:
    """An HTTP proxy that only tunnels (CONNECT), and keeps the request heads it got."""

    def __init__(self, refuse: bool = False) -> None:
        self.refuse = refuse
        self.heads: list[str] = []
        self._server = socket.socket()
        self._server.bind(("127.0.0.1", 0))
        self._server.listen()
        self.url = f"http://127.0.0.1:{self._server.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._tunnel, args=(client,), daemon=True).start()

    def _tunnel(self, client: socket.socket) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            head += client.recv(4096)
        self.heads.append(head.decode())
        if self.refuse:
            client.sendall(b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n")
            client.close()
            return
        host, port = head.split()[1].decode().rsplit(":", 1)
        upstream = socket.create_connection((host, int(port)))
        client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        for source, target in ((client, upstream), (upstream, client)):
            threading.Thread(target=_pipe, args=(source, target), daemon=True).start()

    def close(self) -> None:
        self._server.close()


def _pipe(source: socket.socket, target: socket.socket) -> None:
    try:
        while chunk := source.recv(65536):
            target.sendall(chunk)
    except OSError:
        pass
    finally:
        target.close()


def test_the_environments_proxy_tunnels_the_request(monkeypatch: pytest.MonkeyPatch) -> None:
    proxy = ConnectProxy()
    address = proxy.url.removeprefix("http://")
    monkeypatch.setenv("HTTP_PROXY", f"http://relay:p%40ss@{address}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with Canned(201, '{"sid": "SM1"}') as server:
        client = Wire(server.base_url, timeout=5)
        assert client.post_form("/", FORM).json_object() == {"sid": "SM1"}
        client.close()
    proxy.close()
    (head,) = proxy.heads
    target = server.base_url.removeprefix("http://")
    assert head.startswith(f"CONNECT {target} HTTP/1.")
    assert "Proxy-Authorization: Basic cmVsYXk6cEBzcw==" in head  # relay:p@ss
    assert len(server.received) == 1


def test_no_proxy_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    proxy = ConnectProxy()
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    with Canned(201, "{}") as server:
        client = Wire(server.base_url, timeout=5)
        client.post_form("/", FORM)
        client.close()
    proxy.close()
    assert proxy.heads == []
    assert len(server.received) == 1


def test_a_proxy_that_refuses_the_tunnel_means_not_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    proxy = ConnectProxy(refuse=True)
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with Canned(201, "{}") as server, pytest.raises(NotSent, match="407"):
        Wire(server.base_url, timeout=5).post_form("/", FORM)
    proxy.close()
    assert server.received == []


def test_a_proxy_that_is_not_http_is_refused_without_quoting_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "socks5://user:hunter2@127.0.0.1:1080")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with pytest.raises(ValueError, match="not http://") as caught:
        Wire("https://api.twilio.com", timeout=5)
    assert "hunter2" not in str(caught.value)
