"""A real HTTP receiver on loopback for webhook tests: it records every request and answers
as told (a status, a hang, a redirect, a huge body, a slow dribble)."""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic() when the body had arrived


@dataclass
class Answer:
    status: int = 200
    body: bytes = b"ok"
    headers: dict[str, str] = field(default_factory=dict)
    hang: float = 0.0  # seconds to wait before answering
    dribble: float = 0.0  # seconds between bytes of the status line and headers
    stream_bytes: int = 0  # send this many bytes of body in chunks (no Content-Length)


Policy = Callable[[Received], Answer]


class Receiver:
    def __init__(self, policy: Policy | None = None, tls: ssl.SSLContext | None = None) -> None:
        self.policy: Policy = policy or (lambda _r: Answer())
        self.received: list[Received] = []
        self.arrived = threading.Condition()
        self.stop = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                got = Received(
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                    time.monotonic(),
                )
                with receiver.arrived:
                    receiver.received.append(got)
                    receiver.arrived.notify_all()
                answer = receiver.policy(got)
                with suppress(BrokenPipeError, ConnectionResetError):
                    receiver._answer(self, answer)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.scheme = "http"
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
            self.scheme = "https"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _answer(self, handler: BaseHTTPRequestHandler, answer: Answer) -> None:
        if answer.hang:
            self.stop.wait(answer.hang)
        if answer.dribble:
            head = f"HTTP/1.1 {answer.status} X\r\n".encode() + b"x-slow: " + b"a" * 1000
            for byte in head:
                if self.stop.wait(answer.dribble):
                    return
                handler.wfile.write(bytes([byte]))
                handler.wfile.flush()
            return
        handler.send_response(answer.status)
        for name, value in answer.headers.items():
            handler.send_header(name, value)
        if answer.stream_bytes:
            handler.send_header("transfer-encoding", "chunked")
            handler.end_headers()
            chunk = b"x" * 65536
            sent = 0
            while sent < answer.stream_bytes and not self.stop.is_set():
                handler.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
            handler.wfile.write(b"0\r\n\r\n")
            return
        handler.send_header("content-length", str(len(answer.body)))
        handler.end_headers()
        handler.wfile.write(answer.body)

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.server.server_address[1]}"

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        """The first `count` requests, once they have arrived."""
        with self.arrived:
            if not self.arrived.wait_for(lambda: len(self.received) >= count, timeout):
                raise AssertionError(f"{len(self.received)} of {count} requests arrived")
            return list(self.received[:count])

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def receiving(
    policy: Policy | None = None, tls: ssl.SSLContext | None = None
) -> Iterator[Receiver]:
    with Receiver(policy, tls) as receiver:
        yield receiver
