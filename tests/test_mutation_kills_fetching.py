"""Tests that kill mutants of fetching.py which the rest of the suite let through (scripts/mutation.sh).

Each pins what the identity provider sees or what the caller gets: the request line, method, headers and
body (a loopback echo server answers them back), the size limit at its exact boundary and on a body still
arriving, redirects by status and origin, merged header values, 304 handling, and sockets closed.
"""

from __future__ import annotations

import gc
import json
import socket
import ssl
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from drf_oidc_jwks.exceptions import KeySourceError
from drf_oidc_jwks.fetching import http_fetch, request_json
from drf_oidc_jwks.testing import JWKSServer, Response

TIMEOUT = 1.0


class _Echo(BaseHTTPRequestHandler):
    """Answers every request with JSON naming its method, request target, headers and body."""

    protocol_version = "HTTP/1.1"

    def _answer(self) -> None:
        length = self.headers.get("Content-Length")
        body = self.rfile.read(int(length)) if length and length.isdigit() else b""
        seen = {
            "method": self.command,
            "target": self.path,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "accept": self.headers.get_all("Accept"),
            "body": body.decode("latin-1"),
        }
        payload = json.dumps(seen).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = _answer  # noqa: N815

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def echo() -> Iterator[str]:
    """The base URL of a loopback server that echoes each request back as JSON."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def get(url: str, **kwargs: Any) -> Any:
    return request_json("GET", url, timeout=TIMEOUT, max_bytes=64 * 1024, allow_insecure_http=False, **kwargs)


# -- what the identity provider sees ------------------------------------------------------


def test_the_request_target_keeps_the_query_and_an_empty_path_asks_for_the_root(echo):
    assert get(echo + "/keys?tenant=a&x=1").document["target"] == "/keys?tenant=a&x=1"
    assert get(echo).document["target"] == "/"
    assert get(echo + "?only=query").document["target"] == "/?only=query"


def test_json_is_asked_for_and_the_callers_headers_are_sent_as_given(echo):
    seen = get(echo + "/doc", headers={"X-Trace": "t1"}).document
    assert seen["method"] == "GET"
    assert seen["headers"]["accept"] == "application/json, application/jwk-set+json"
    assert seen["headers"]["x-trace"] == "t1"
    assert "authorization" not in seen["headers"] and "content-type" not in seen["headers"]
    assert "content-length" not in seen["headers"]  # a GET has no body, not an empty one
    seen = get(echo + "/doc", headers={"Accept": "application/jwk-set+json"}).document
    assert seen["accept"] == ["application/jwk-set+json"]  # the caller's replaces ours: one Accept header


def test_a_form_is_posted_urlencoded(echo):
    seen = request_json(
        "POST", echo + "/token", timeout=TIMEOUT, max_bytes=4096, allow_insecure_http=False, form={"a": "1 2"}
    ).document
    assert (seen["method"], seen["body"]) == ("POST", "a=1+2")
    assert seen["headers"]["content-type"] == "application/x-www-form-urlencoded"


def test_a_url_with_a_port_out_of_range_is_refused_cleanly():
    with pytest.raises(KeySourceError) as exc:
        http_fetch("http://127.0.0.1:99999/jwks.json", timeout=TIMEOUT, max_bytes=4096, allow_insecure_http=False)
    assert exc.value.reason == "URL not allowed (bad port)"


# -- redirects ------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [301, 302, 303])
def test_a_post_redirected_by_301_302_303_follows_as_a_get_without_its_body(server, status):
    server.respond("/a", Response(status, b"", {"Location": "/b"}))
    server.respond("/b", Response(200, b"{}"))
    result = request_json(
        "POST", server.url("/a"), timeout=TIMEOUT, max_bytes=4096, allow_insecure_http=False, form={"k": "v"}
    )
    assert result.status == 200
    sent = {k.lower() for k in server.last_headers["/b"]}
    assert "content-type" not in sent and server.last_bodies["/b"] == b""
    assert server.last_bodies["/a"] == b"k=v"


@pytest.mark.parametrize("status", [307, 308])
def test_a_post_redirected_by_307_308_keeps_its_method_and_body(server, status):
    server.respond("/a", Response(status, b"", {"Location": "/b"}))
    server.respond("/b", Response(200, b"{}"))
    request_json("POST", server.url("/a"), timeout=TIMEOUT, max_bytes=4096, allow_insecure_http=False, form={"k": "v"})
    assert server.last_bodies["/b"] == b"k=v"
    assert server.last_headers["/b"]["Content-Type"] == "application/x-www-form-urlencoded"


def test_a_get_redirected_by_303_stays_a_get(server):
    server.respond("/a", Response(303, b"", {"Location": "/b"}))
    server.respond("/b", Response(200, b'{"ok": 1}'))
    assert get(server.url("/a")).document == {"ok": 1}


def test_a_redirect_to_another_port_or_scheme_of_the_same_host_is_refused(server):
    with JWKSServer() as other:
        other.respond("/jwks.json", Response(200, b"{}"))
        server.respond("/a", Response(302, b"", {"Location": other.url("/jwks.json")}))
        with pytest.raises(KeySourceError) as exc:
            get(server.url("/a"))
        assert exc.value.reason == "redirect to another host refused"
        assert other.total() == 0
    server.respond("/b", Response(302, b"", {"Location": server.url("/jwks.json").replace("http:", "https:")}))
    with pytest.raises(KeySourceError) as exc:
        get(server.url("/b"))
    assert exc.value.reason == "redirect to another host refused"


def test_a_redirect_without_a_location_is_refused_as_too_many_redirects(server):
    server.respond("/a", Response(302, b""))
    with pytest.raises(KeySourceError) as exc:
        get(server.url("/a"))
    assert exc.value.reason == "too many redirects"
    assert server.total("/a") == 4  # the first request and three follow-ups


# -- the size limit -----------------------------------------------------------------------


@pytest.mark.parametrize("content_length", [True, False])
def test_a_body_of_exactly_max_bytes_is_read_and_one_byte_more_is_refused(server, content_length):
    body = b'{"a": "' + b"x" * 4087 + b'"}'  # 4096 bytes
    assert len(body) == 4096
    server.respond("/doc", Response(200, body, content_length=content_length))
    result = http_fetch(server.url("/doc"), timeout=TIMEOUT, max_bytes=4096, allow_insecure_http=False)
    assert result.document == {"a": "x" * 4087}
    with pytest.raises(KeySourceError) as exc:
        http_fetch(server.url("/doc"), timeout=TIMEOUT, max_bytes=4095, allow_insecure_http=False)
    assert exc.value.reason == "response larger than 4095 bytes"


@pytest.mark.parametrize("content_length", [True, False])
def test_a_document_longer_than_one_read_is_read_whole(server, content_length):
    document = {"keys": [], "padding": "p" * 200_000}  # several 64 KiB reads
    server.respond("/doc", Response(200, json.dumps(document).encode(), content_length=content_length))
    result = http_fetch(server.url("/doc"), timeout=TIMEOUT, max_bytes=512 * 1024, allow_insecure_http=False)
    assert result.document == document


def test_a_body_still_arriving_past_max_bytes_is_refused_at_the_limit_not_read_to_its_end(server):
    # 20 000 bytes at 0.5 ms a byte take 10 s: the refusal must come after the first 1 025, not at the deadline.
    server.respond("/doc", Response(200, b"[" + b" " * 19_998 + b"]", drip=0.0005, content_length=False))
    started = time.monotonic()
    with pytest.raises(KeySourceError) as exc:
        http_fetch(server.url("/doc"), timeout=TIMEOUT, max_bytes=1024, allow_insecure_http=False)
    assert exc.value.reason == "response larger than 1024 bytes"
    assert time.monotonic() - started < TIMEOUT


# -- headers and 304 ----------------------------------------------------------------------


def test_a_header_sent_twice_is_one_value_joined_in_order(server):
    headers = {"X-Part": "one", "x-part": "two", "Cache-Control": "no-store", "cache-control": "max-age=600"}
    server.respond("/doc", Response(200, b"{}", headers))
    result = get(server.url("/doc"))
    assert result.headers["x-part"] == "one, two"
    assert http_fetch(server.url("/doc"), timeout=TIMEOUT, max_bytes=4096, allow_insecure_http=False).max_age == 0.0


@pytest.mark.parametrize("headers", [None, {"X-Trace": "1"}])
def test_a_304_to_an_unconditional_request_is_an_error(server, headers):
    server.respond("/doc", Response(304, b""))
    with pytest.raises(KeySourceError) as exc:
        http_fetch(server.url("/doc"), timeout=TIMEOUT, max_bytes=4096, allow_insecure_http=False, headers=headers)
    assert exc.value.reason == "HTTP 304"


@pytest.mark.parametrize("header", ["If-None-Match", "if-modified-since"])
def test_a_304_to_a_conditional_request_is_an_answer_with_its_validators(server, header):
    server.respond("/doc", Response(304, b"", {"ETag": '"e2"', "Last-Modified": "Tue, 02 Jan 2024 00:00:00 GMT"}))
    result = http_fetch(
        server.url("/doc"), timeout=TIMEOUT, max_bytes=4096, allow_insecure_http=False, headers={header: '"e1"'}
    )
    assert (result.status, result.document, result.etag, result.last_modified) == (
        304,
        None,
        '"e2"',
        "Tue, 02 Jan 2024 00:00:00 GMT",
    )


def test_a_200_carries_its_validators_and_freshness(server):
    server.respond(
        "/doc",
        Response(
            200,
            b"{}",
            {"ETag": '"e1"', "Last-Modified": "Mon, 01 Jan 2024 00:00:00 GMT", "Cache-Control": "max-age=90"},
        ),
    )
    result = http_fetch(server.url("/doc"), timeout=TIMEOUT, max_bytes=4096, allow_insecure_http=False)
    assert (result.status, result.etag, result.last_modified, result.max_age) == (
        200,
        '"e1"',
        "Mon, 01 Jan 2024 00:00:00 GMT",
        90.0,
    )


# -- sockets ------------------------------------------------------------------------------


def test_every_exchange_closes_its_socket(server):
    server.respond("/close", Response(200, b"{}", content_length=False))  # a body that ends with the connection
    server.respond("/big", Response(200, b"[" + b" " * 5000 + b"]"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        get(server.url("/jwks.json"))
        get(server.url("/close"))
        with pytest.raises(KeySourceError):
            http_fetch(server.url("/big"), timeout=TIMEOUT, max_bytes=100, allow_insecure_http=False)
        gc.collect()
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []


def test_allow_insecure_http_lets_http_fetch_use_plain_http_to_a_non_loopback_name(server):
    # "127.1" reaches the loopback server but is not a loopback *name*: only allow_insecure_http lets it through.
    url = server.url("/jwks.json").replace("127.0.0.1", "127.1")
    assert http_fetch(url, timeout=TIMEOUT, max_bytes=64 * 1024, allow_insecure_http=True).status == 200
    with pytest.raises(KeySourceError) as exc:
        http_fetch(url, timeout=TIMEOUT, max_bytes=64 * 1024, allow_insecure_http=False)
    assert exc.value.reason == "URL not allowed (https required)"


# -- https: the default trust store, a caller's context, the host name checked -------------------


def _certificate(tmp_path: Any, names: list[Any]) -> tuple[str, str]:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "loopback test IdP")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return str(cert_path), str(key_path)


@contextmanager
def https_echo(cert: str, key: str) -> Iterator[str]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_https_uses_the_callers_context_and_checks_the_certificate_names_the_host(tmp_path):
    import ipaddress

    from cryptography import x509

    cert, key = _certificate(tmp_path, [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    trusting = ssl.create_default_context(cafile=cert)
    with https_echo(cert, key) as base:
        result = get(base + "/jwks.json", tls=trusting)
        assert (result.status, result.document["target"]) == (200, "/jwks.json")
        # Without a context: the default trust store, which does not hold this self-signed certificate.
        with pytest.raises(KeySourceError) as exc:
            http_fetch(base + "/jwks.json", timeout=TIMEOUT, max_bytes=4096, allow_insecure_http=False)
        assert exc.value.reason == "request failed: SSLError"
    other, other_key = _certificate(tmp_path, [x509.DNSName("idp.example.com")])
    with https_echo(other, other_key) as base:
        with pytest.raises(KeySourceError) as exc:  # trusted, but issued for another host
            get(base + "/jwks.json", tls=ssl.create_default_context(cafile=other))
        assert exc.value.reason == "request failed: SSLError"


def test_a_request_body_the_server_never_reads_is_cut_off_at_the_deadline():
    # The server accepts and never reads: once the socket buffers are full, sending blocks until the deadline.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/introspect"
        started = time.monotonic()
        with pytest.raises(KeySourceError) as exc:
            request_json(
                "POST", url, timeout=TIMEOUT, max_bytes=4096, allow_insecure_http=False, form={"t": "x" * 32_000_000}
            )
        elapsed = time.monotonic() - started
    assert exc.value.reason == "timed out"
    assert TIMEOUT - 0.05 <= elapsed < TIMEOUT + 0.5, f"gave up after {elapsed:.2f}s"


def seconds_to_time_out(url: str) -> float:
    """Fetch ``url`` expecting the deadline's refusal (``timed out``); return how long that took."""
    started = time.monotonic()
    with pytest.raises(KeySourceError) as exc:
        http_fetch(url, timeout=TIMEOUT, max_bytes=4096, allow_insecure_http=False)
    assert exc.value.reason == "timed out"
    return time.monotonic() - started


def test_a_tls_handshake_the_server_never_answers_is_cut_off_at_the_deadline():
    with socket.socket() as listener:  # accepts the connection (the kernel does) and never speaks TLS
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        url = f"https://127.0.0.1:{listener.getsockname()[1]}/jwks.json"
        elapsed = seconds_to_time_out(url)
    assert elapsed < TIMEOUT + 0.5, f"gave up after {elapsed:.2f}s"


# -- the default trust store, host resolution, the last read of a body, a 304's freshness -----------


def test_the_default_trust_store_is_certifis_and_ignores_ssl_cert_file(tmp_path, monkeypatch):
    import ipaddress

    from cryptography import x509

    cert, key = _certificate(tmp_path, [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    # The system store would trust this certificate (OpenSSL reads SSL_CERT_FILE); certifi's bundle does not.
    monkeypatch.setenv("SSL_CERT_FILE", cert)
    monkeypatch.setattr("drf_oidc_jwks.fetching._tls", None)  # built again on first use, under this environment
    with https_echo(cert, key) as base:
        with pytest.raises(KeySourceError) as exc:
            http_fetch(base + "/jwks.json", timeout=TIMEOUT, max_bytes=4096, allow_insecure_http=False)
    assert exc.value.reason == "request failed: SSLError"


def test_the_url_host_is_the_one_connected_to():
    # 127.0.0.2 is loopback too, but not 127.0.0.1 (the address a host of None resolves to).
    httpd = ThreadingHTTPServer(("127.0.0.2", 0), _Echo)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.2:{httpd.server_address[1]}/jwks.json"
        result = request_json("GET", url, timeout=TIMEOUT, max_bytes=4096, allow_insecure_http=True)
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert (result.status, result.document["headers"]["host"]) == (200, f"127.0.0.2:{httpd.server_address[1]}")


@contextmanager
def stalling_server(answer: bytes) -> Iterator[str]:
    """A loopback server that sends ``answer`` (head and part of a body) and then neither sends nor closes."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    done = threading.Event()

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            request = b""
            while b"\r\n\r\n" not in request:
                request += conn.recv(4096)
            conn.sendall(answer)
            done.wait(10)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/jwks.json"
    finally:
        done.set()
        thread.join(5)
        listener.close()


def test_a_body_past_max_bytes_is_refused_once_one_byte_too_many_arrived_on_a_later_read():
    # 70 001 bytes arrive, then nothing: the second read must ask for exactly the 4 465 that cross the limit.
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n"
    with stalling_server(head + b"[" + b" " * 70_000) as url:
        with pytest.raises(KeySourceError) as exc:
            http_fetch(url, timeout=TIMEOUT, max_bytes=70_000, allow_insecure_http=False)
    assert exc.value.reason == "response larger than 70000 bytes"


def test_a_304_to_a_conditional_request_carries_its_freshness(server):
    server.respond("/doc", Response(304, b"", {"ETag": '"e1"', "Cache-Control": "max-age=90"}))
    result = http_fetch(
        server.url("/doc"), timeout=TIMEOUT, max_bytes=4096, allow_insecure_http=False, headers={"If-None-Match": "x"}
    )
    assert (result.status, result.max_age) == (304, 90.0)


@contextmanager
def served_on(host: str, port: int, tls: ssl.SSLContext | None = None) -> Iterator[None]:
    """The echo server on ``host``:``port`` (a privileged port needs root: skipped without it)."""
    try:
        httpd = ThreadingHTTPServer((host, port), _Echo)
    except OSError as exc:  # not root, or the port is taken
        pytest.skip(f"cannot listen on {host}:{port}: {exc}")
    if tls is not None:
        httpd.socket = tls.wrap_socket(httpd.socket, server_side=True)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_a_url_without_a_port_uses_80_for_http_and_443_for_https(tmp_path):
    import ipaddress

    from cryptography import x509

    host = "127.0.0.9"  # a loopback address of this test's own, so the well-known ports are free
    with served_on(host, 80):
        url = f"http://{host}/jwks.json"
        result = request_json("GET", url, timeout=TIMEOUT, max_bytes=4096, allow_insecure_http=True)
    assert (result.status, result.document["headers"]["host"]) == (200, host)
    cert, key = _certificate(tmp_path, [x509.IPAddress(ipaddress.ip_address(host))])
    server_side = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_side.load_cert_chain(cert, key)
    with served_on(host, 443, server_side):
        result = get(f"https://{host}/jwks.json", tls=ssl.create_default_context(cafile=cert))
    assert (result.status, result.document["headers"]["host"]) == (200, f"{host}:443")


def test_a_get_is_redirected_with_the_headers_it_was_sent_with(server):
    server.respond("/a", Response(302, b"", {"Location": "/b"}))
    server.respond("/b", Response(200, b"{}"))
    get(server.url("/a"), headers={"Content-Type": "application/json"})
    assert server.last_headers["/b"]["Content-Type"] == "application/json"


def test_a_declared_length_over_max_bytes_is_refused_before_the_body_arrives():
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
    with stalling_server(head + b"[") as url:  # one byte of the 100 000 declared, then nothing
        with pytest.raises(KeySourceError) as exc:
            http_fetch(url, timeout=TIMEOUT, max_bytes=4096, allow_insecure_http=False)
    assert exc.value.reason == "response larger than 4096 bytes"


def test_a_connection_the_server_never_accepts_is_cut_off_at_the_deadline():
    with socket.socket() as listener, socket.socket() as first:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        first.connect(listener.getsockname())  # the accept queue is full: the next handshake gets no answer
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/jwks.json"
        elapsed = seconds_to_time_out(url)
    assert elapsed < TIMEOUT + 0.5, f"gave up after {elapsed:.2f}s"


def test_a_post_without_a_body_redirected_by_303_follows_as_a_get(server):
    server.respond("/a", Response(303, b"", {"Location": "/b"}))
    server.respond("/b", Response(200, b'{"ok": 1}'))
    result = request_json("POST", server.url("/a"), timeout=TIMEOUT, max_bytes=4096, allow_insecure_http=False)
    assert result.document == {"ok": 1}


def test_each_exchange_is_a_client_span_named_by_its_method(echo):
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):  # set once per process: mutmut runs two sessions in one
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    exporter = InMemorySpanExporter()
    processor = SimpleSpanProcessor(exporter)
    provider.add_span_processor(processor)
    try:
        request_json("POST", echo + "/token", timeout=TIMEOUT, max_bytes=4096, allow_insecure_http=False, form={})
    finally:
        processor.shutdown()
    [span] = exporter.get_finished_spans()
    assert (span.name, span.attributes["http.request.method"]) == ("POST 127.0.0.1", "POST")
