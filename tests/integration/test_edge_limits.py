"""The edge limits of ``hookyard serve`` on a real server, driven with raw sockets.

The server is the real app under :class:`producers.edge.EdgeProtocol` on uvloop, as ``hookyard
serve`` runs it, with small limits and timeouts so each test is quick. Bounds on time are
generous: they tell "answered at once" from "answered only after a timeout", nothing finer.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import orjson
import pytest

from hookyard.config import Settings
from ops import samples
from ops.bench.requests import raw_request
from tests.conftest import GITHUB_SECRETS, free_port, make_settings
from tests.support.waiting import wait_until

pytestmark = pytest.mark.usefixtures("empty_queues")


class EdgeServer:
    """The ingestion app under the edge protocol, on uvicorn and uvloop, in a thread of the test process."""

    def __init__(self, settings: Settings) -> None:
        import uvicorn  # noqa: PLC0415

        from producers.app import create_app  # noqa: PLC0415
        from producers.edge import EdgeLimits, edge_protocol  # noqa: PLC0415

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            create_app(settings),
            host="127.0.0.1",
            port=self.port,
            http=edge_protocol(EdgeLimits.from_settings(settings)),
            ws="none",
            loop="uvloop",
            log_config=None,
            access_log=False,
            lifespan="on",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True, name="uvicorn-edge")

    def __enter__(self) -> EdgeServer:
        self.thread.start()
        wait_until(lambda: self.server.started, timeout=15, what="uvicorn to start")
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)

    @property
    def connections(self) -> int:
        return len(self.server.server_state.connections)

    @property
    def running_requests(self) -> int:
        return len(self.server.server_state.tasks)

    def connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=15)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock


@pytest.fixture
def edge(database_url: str, empty_queues: str) -> Iterator[Callable[..., EdgeServer]]:
    """Starts an edge server with the given ``hookyard_*`` settings; stops it after the test."""
    with contextlib.ExitStack() as stack:

        def start(**overrides: Any) -> EdgeServer:
            settings = make_settings(database_url, empty_queues, **overrides)
            return stack.enter_context(EdgeServer(settings))

        yield start


class Answer:
    """One HTTP response read off a raw socket."""

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def json(self) -> Any:
        return orjson.loads(self.body)


def read_answer(sock: socket.socket) -> Answer | None:
    """The next response on ``sock``, or None when the server closed it without one."""
    buffer = b""
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        if not chunk:
            assert not buffer, f"connection closed inside a response head: {buffer!r}"
            return None
        buffer += chunk
    head, _, body = buffer.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "connection closed inside a response body"
        body += chunk
    return Answer(int(status_line.split()[1]), headers, body)


def is_closed(sock: socket.socket, within: float = 10.0) -> bool:
    """True when the server closes ``sock`` (EOF or reset) within ``within`` seconds, sending nothing more."""
    sock.settimeout(within)
    try:
        return sock.recv(65536) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def assert_json_error(answer: Answer | None, status: int, code: str) -> None:
    assert answer is not None, f"expected {status} {code}, the connection was closed without an answer"
    assert answer.status == status, answer.body
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers["connection"] == "close"
    body = answer.json()
    assert body["error"] == code
    assert isinstance(body["detail"], str)
    assert body["detail"]


def signed_github_request() -> bytes:
    event, body, delivery = samples.github_star(f"edge-{uuid.uuid4()}")
    return raw_request(
        "/webhooks/github", samples.github_headers(GITHUB_SECRETS[0], body, event, delivery), body
    )


HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: hookyard\r\n\r\n"


# --- header size ---


def test_headers_over_the_limit_are_refused_with_431_as_soon_as_the_limit_is_passed(
    edge: Callable[..., EdgeServer],
) -> None:
    server = edge(hookyard_max_header_bytes=8192, hookyard_header_timeout=60)
    with server.connect() as sock:
        # The head never ends: only the byte count can refuse it (the header timeout is a minute).
        sock.sendall(b"POST /webhooks/github HTTP/1.1\r\nHost: x\r\nX-Padding: " + b"a" * 9000)
        started = time.monotonic()
        answer = read_answer(sock)
        assert time.monotonic() - started < 10
        assert_json_error(answer, 431, "headers_too_large")
        assert is_closed(sock)


def test_a_64_mib_header_is_refused_at_once_without_being_read_whole(edge: Callable[..., EdgeServer]) -> None:
    server = edge(hookyard_header_timeout=60)
    total = 64 << 20
    sent = 0

    with server.connect() as sock:

        def send() -> None:
            nonlocal sent
            block = b"a" * (1 << 20)
            with contextlib.suppress(OSError):  # the server stops reading and closes: that is the point
                sock.sendall(b"POST /webhooks/github HTTP/1.1\r\nHost: x\r\nX-Giant: ")
                while sent < total:
                    sock.sendall(block)
                    sent += len(block)
                sock.sendall(b"\r\n\r\n")

        sender = threading.Thread(target=send, daemon=True)
        started = time.monotonic()
        sender.start()
        answer = read_answer(sock)
        elapsed = time.monotonic() - started
        sender.join(timeout=30)

    assert_json_error(answer, 431, "headers_too_large")
    assert elapsed < 5, f"431 after {elapsed:.1f} s"
    assert not sender.is_alive()
    assert sent < total // 4, f"the server took {sent >> 20} MiB of a header before refusing it"


def test_too_many_headers_are_refused_with_431(edge: Callable[..., EdgeServer]) -> None:
    server = edge(hookyard_max_headers=20)
    headers = "".join(f"X-Extra-{n}: {n}\r\n" for n in range(25))
    with server.connect() as sock:
        sock.sendall(f"GET /healthz HTTP/1.1\r\nHost: x\r\n{headers}\r\n".encode())
        assert_json_error(read_answer(sock), 431, "headers_too_large")
        assert is_closed(sock)


def test_chunk_trailers_over_the_header_limit_are_refused_with_431(edge: Callable[..., EdgeServer]) -> None:
    server = edge(hookyard_max_header_bytes=8192, hookyard_body_timeout=60, hookyard_body_idle_timeout=60)
    with server.connect() as sock:
        sock.sendall(
            b"POST /webhooks/github HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"2\r\n{}\r\n0\r\nX-Trailer: " + b"a" * 20_000
        )
        assert_json_error(read_answer(sock), 431, "headers_too_large")
        assert is_closed(sock)


def test_a_chunked_delivery_in_many_small_chunks_is_accepted(edge: Callable[..., EdgeServer]) -> None:
    server = edge(hookyard_max_header_bytes=2048)
    event, body, delivery = samples.github_star(f"edge-{uuid.uuid4()}")
    headers = samples.github_headers(GITHUB_SECRETS[0], body, event, delivery)
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    # 16-byte chunks: their framing adds up to far more than the 2 KiB header budget, legitimately.
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in _pieces(body, 16))
    with server.connect() as sock:
        sock.sendall(
            f"POST /webhooks/github HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n{head}\r\n".encode()
            + chunks
            + b"0\r\n\r\n"
        )
        answer = read_answer(sock)
    assert answer is not None
    assert answer.status == 202, answer.body
    assert answer.json() == {"delivery_id": delivery}


def _pieces(data: bytes, size: int) -> list[bytes]:
    return [data[start : start + size] for start in range(0, len(data), size)]


# --- header and body timeouts ---


def test_a_client_that_never_finishes_its_headers_gets_408_then_is_closed(
    edge: Callable[..., EdgeServer],
) -> None:
    server = edge(hookyard_header_timeout=0.5)
    with server.connect() as sock:
        started = time.monotonic()
        sock.sendall(b"POST /webhooks/github HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        answer = read_answer(sock)
        elapsed = time.monotonic() - started
        assert_json_error(answer, 408, "request_timeout")
        assert is_closed(sock)
    assert 0.4 <= elapsed < 10, f"408 after {elapsed:.2f} s"


def test_a_connection_that_sends_nothing_is_closed_without_an_answer(edge: Callable[..., EdgeServer]) -> None:
    server = edge(hookyard_header_timeout=0.5)
    with server.connect() as sock:
        sock.settimeout(10)
        assert sock.recv(65536) == b""


def test_a_body_shorter_than_its_content_length_gets_408_and_the_app_stops_waiting(
    edge: Callable[..., EdgeServer],
) -> None:
    server = edge(hookyard_body_idle_timeout=0.5)
    with server.connect() as sock:
        sock.sendall(b'POST /webhooks/github HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{"zen":')
        wait_until(lambda: server.running_requests == 1, timeout=10, what="the app to wait for the body")
        assert_json_error(read_answer(sock), 408, "request_timeout")
        assert is_closed(sock)
    wait_until(lambda: server.running_requests == 0, timeout=10, what="the app's receive() to return")


def test_a_body_that_trickles_in_past_the_body_timeout_gets_408(edge: Callable[..., EdgeServer]) -> None:
    server = edge(hookyard_body_timeout=1.0, hookyard_body_idle_timeout=30)
    with server.connect() as sock:
        sock.sendall(b"POST /webhooks/github HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
        started = time.monotonic()
        sock.settimeout(0.2)
        answer: Answer | None = None
        # One byte every 0.2 s never leaves the body idle, but never finishes it either.
        while answer is None and time.monotonic() - started < 20:
            try:
                sock.sendall(b" ")
                answer = read_answer(sock)
            except TimeoutError:
                continue
        sock.settimeout(15)
        elapsed = time.monotonic() - started
        assert_json_error(answer, 408, "request_timeout")
    assert 0.9 <= elapsed < 20, f"408 after {elapsed:.2f} s"


# --- framing errors ---


@pytest.mark.parametrize(
    "request_bytes",
    [
        pytest.param(
            b"POST /webhooks/github HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", id="cl-abc"
        ),
        pytest.param(
            b"POST /webhooks/github HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", id="cl-negative"
        ),
        pytest.param(
            b"POST /webhooks/github HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nab",
            id="cl-twice",
        ),
        pytest.param(
            b"POST /webhooks/github HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n",
            id="cl-overflow",
        ),
        pytest.param(
            b"POST /webhooks/github HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            id="cl-and-chunked",
        ),
        pytest.param(
            b"POST /webhooks/github HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            id="chunk-size-not-hex",
        ),
        pytest.param(
            b"POST /webhooks/github HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"2\r\n{}XX0\r\n\r\n",
            id="chunk-longer-than-its-size",
        ),
        pytest.param(
            b"POST /webhooks/github HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
            id="te-not-chunked",
        ),
        pytest.param(b"HELLO THERE\r\n\r\n", id="garbage-request-line"),
        pytest.param(b"GET /a b HTTP/1.1\r\nHost: x\r\n\r\n", id="space-in-target"),
        pytest.param(b"GET / HTTP/1.1\r\nHost : x\r\n\r\n", id="space-before-colon"),
        pytest.param(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", id="tls-hello-on-plain-http"),
    ],
)
def test_framing_errors_get_400_with_the_spec_json_body(
    edge: Callable[..., EdgeServer], request_bytes: bytes
) -> None:
    server = edge()
    with server.connect() as sock:
        sock.sendall(request_bytes)
        assert_json_error(read_answer(sock), 400, "invalid_request")
        assert is_closed(sock)


def test_a_chunked_body_that_breaks_off_mid_stream_gets_400_and_the_app_stops_waiting(
    edge: Callable[..., EdgeServer],
) -> None:
    server = edge()
    with server.connect() as sock:
        sock.sendall(
            b'POST /webhooks/github HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{"a'
        )
        wait_until(lambda: server.running_requests == 1, timeout=10, what="the app to wait for the body")
        sock.sendall(b"\r\nnot-a-size\r\n")
        assert_json_error(read_answer(sock), 400, "invalid_request")
    wait_until(lambda: server.running_requests == 0, timeout=10, what="the app's receive() to return")


def test_a_body_cut_short_by_the_client_closing_its_side_gets_400(edge: Callable[..., EdgeServer]) -> None:
    server = edge()
    with server.connect() as sock:
        sock.sendall(b"POST /webhooks/github HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{}")
        sock.shutdown(socket.SHUT_WR)
        assert_json_error(read_answer(sock), 400, "invalid_request")


def test_a_client_that_closes_its_side_after_a_whole_request_still_gets_its_answer(
    edge: Callable[..., EdgeServer],
) -> None:
    server = edge()
    with server.connect() as sock:
        sock.sendall(signed_github_request())
        sock.shutdown(socket.SHUT_WR)
        answer = read_answer(sock)
        assert answer is not None
        assert answer.status == 202, answer.body
        assert is_closed(sock)


# --- keep-alive ---


def test_the_last_request_a_connection_may_carry_is_answered_with_connection_close(
    edge: Callable[..., EdgeServer],
) -> None:
    server = edge(hookyard_keepalive_requests=3)
    with server.connect() as sock:
        for number in (1, 2, 3):
            sock.sendall(HEALTHZ)
            answer = read_answer(sock)
            assert answer is not None
            assert answer.status == 200
            assert (answer.headers.get("connection") == "close") is (number == 3)
        assert is_closed(sock)


def test_an_idle_keep_alive_connection_is_closed_after_the_keepalive_timeout(
    edge: Callable[..., EdgeServer],
) -> None:
    server = edge(hookyard_keepalive_timeout=0.5, hookyard_header_timeout=60)
    with server.connect() as sock:
        sock.sendall(HEALTHZ)
        answer = read_answer(sock)
        assert answer is not None
        assert answer.status == 200
        started = time.monotonic()
        assert is_closed(sock, within=10)
    assert time.monotonic() - started >= 0.4


def test_a_connection_in_steady_use_is_not_closed_by_the_timeouts(edge: Callable[..., EdgeServer]) -> None:
    server = edge(hookyard_keepalive_timeout=0.5, hookyard_header_timeout=0.5)
    with server.connect() as sock:
        # Three times the timeouts over one connection, a request every 0.1 s: none of them applies.
        started = time.monotonic()
        while time.monotonic() - started < 1.5:
            sock.sendall(HEALTHZ)
            answer = read_answer(sock)
            assert answer is not None
            assert answer.status == 200
            time.sleep(0.1)


# --- connection bound ---


def test_connections_past_the_bound_get_503_and_are_closed_until_one_frees_up(
    edge: Callable[..., EdgeServer],
) -> None:
    server = edge(hookyard_max_connections=4, hookyard_header_timeout=60)
    with contextlib.ExitStack() as held:
        idle = [held.enter_context(server.connect()) for _ in range(4)]
        wait_until(lambda: server.connections == 4, timeout=10, what="four connections to be open")
        with server.connect() as extra:
            answer = read_answer(extra)
            assert_json_error(answer, 503, "too_many_connections")
            assert answer is not None
            assert answer.headers["retry-after"] == "1"
            assert is_closed(extra)
        assert server.connections == 4
        idle[0].close()
        wait_until(lambda: server.connections == 3, timeout=10, what="a connection to close")
        with server.connect() as sock:
            sock.sendall(HEALTHZ)
            answer = read_answer(sock)
            assert answer is not None
            assert answer.status == 200


# --- the point of it all ---


def test_a_signed_delivery_is_accepted_while_slow_clients_hold_connections(
    edge: Callable[..., EdgeServer],
) -> None:
    server = edge(hookyard_header_timeout=60)
    with contextlib.ExitStack() as held:
        for number in range(50):
            slow = held.enter_context(server.connect())
            slow.sendall(f"POST /webhooks/github HTTP/1.1\r\nHost: x\r\nX-Slow-{number}: ".encode())
        wait_until(lambda: server.connections == 50, timeout=10, what="the slow clients to connect")
        event, body, delivery = samples.github_star(f"edge-{uuid.uuid4()}")
        headers = samples.github_headers(GITHUB_SECRETS[0], body, event, delivery)
        started = time.monotonic()
        response = httpx.post(f"{server.url}/webhooks/github", content=body, headers=headers, timeout=10)
        assert response.status_code == 202, response.text
        assert response.json() == {"delivery_id": delivery}
        assert time.monotonic() - started < 5
