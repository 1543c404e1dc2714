"""A fault-injecting HTTPS proxy in front of the real kube-apiserver (tests only).

A real API server cannot be told to answer 429, hang or die after the 17th request, so the
reliability tests put this proxy between skycheck and the test control plane. It terminates
TLS with its own certificate (the kubeconfig under test trusts the proxy's CA), reads each
HTTP/1.1 request, asks a *policy* what to do with it, and either forwards it to the real
apiserver over verified TLS or injects a fault:

- ``Forward()``: pass the request through and the real answer back;
- ``Respond(status, body, headers)``: answer by itself (429 with Retry-After, 503, a 201 with
  a body that is not a review, a redirect ...);
- ``Reset()``: TCP reset, no answer; ``Close()``: clean close, no answer;
- ``Hang()``: read the request and never answer (until the proxy stops);
- ``Raw(data)``: write these bytes and close (garbage, a truncated answer);
- ``Kill()``: the server "dies": this and every later request is reset, and new connections
  are reset before the TLS handshake.

Every request is recorded (``seen``) with the action taken and its timing, and the number of
requests forwarded concurrently is tracked (``max_inflight``): the load benchmark and the
fault tests read both. Headers are forwarded as received, repeated ones included
(``Impersonate-Group``), so the apiserver authenticates the client's own token.

Safety: it listens on 127.0.0.1 only, caps connections, header and body sizes, runs on daemon
threads, and stops itself after ``lifetime`` seconds even if a test forgets to.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlsplit

MAX_HEADER_BYTES = 64 * 1024
MAX_BODY_BYTES = 4 * 1024 * 1024
IDLE_TIMEOUT = 30.0  # seconds a client connection may sit idle between requests
UPSTREAM_TIMEOUT = 30.0
# Not forwarded (RFC 9110 section 7.6.1), plus the ones the proxy sets itself.
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)


# --- requests and actions ----------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """One HTTP request as the proxy read it."""

    index: int  # 0-based arrival order over all connections
    method: str
    path: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    connection: int  # which client connection carried it

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    @property
    def fingerprint(self) -> str:
        """Same for a request and its retries (method, path, body and impersonation)."""
        imp = [f"{k}={v}" for k, v in self.headers if k.lower().startswith("impersonate-")]
        data = "\0".join([self.method, self.path, *imp]).encode() + b"\0" + self.body
        return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Forward:
    """Send the request to the real apiserver and relay its answer."""


@dataclass(frozen=True)
class Respond:
    """Answer without asking the apiserver."""

    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Reset:
    """Abort the connection with a TCP RST; no answer."""


@dataclass(frozen=True)
class Close:
    """Close the connection cleanly without answering."""


@dataclass(frozen=True)
class Hang:
    """Never answer (the connection stays open until the proxy stops)."""


@dataclass(frozen=True)
class Raw:
    """Write these bytes instead of an HTTP answer, then close."""

    data: bytes


@dataclass(frozen=True)
class Kill:
    """The server dies: reset this and every later request and connection."""


Action = Forward | Respond | Reset | Close | Hang | Raw | Kill
Policy = Callable[[Request], Action]


@dataclass(frozen=True)
class Seen:
    """What happened to one request."""

    request: Request
    action: str  # the action's class name
    status: int | None  # HTTP status the client got, None when it got no answer
    started: float  # time.monotonic() when the request had been read
    ended: float


# --- policies ------------------------------------------------------------------------------


def status(code: int, *, retry_after: float | None = None, message: str = "") -> Respond:
    """A Kubernetes ``Status`` answer with ``code`` (and a Retry-After header)."""
    reason = http.client.responses.get(code, "Error")
    body = json.dumps(
        {
            "kind": "Status",
            "apiVersion": "v1",
            "status": "Failure",
            "message": message or f"injected fault: {code} {reason}",
            "reason": reason.replace(" ", ""),
            "code": code,
        }
    ).encode()
    headers: tuple[tuple[str, str], ...] = (("Content-Type", "application/json"),)
    if retry_after is not None:
        headers += (("Retry-After", f"{retry_after:g}"),)
    return Respond(code, body, headers)


def forward_all(request: Request) -> Action:
    """The identity policy: a transparent proxy."""
    return Forward()


def after(n: int, action: Action) -> Policy:
    """Forward the first ``n`` requests, then apply ``action`` to every later one."""
    return lambda r: Forward() if r.index < n else action


def when(predicate: Callable[[Request], bool], action: Action) -> Policy:
    """Apply ``action`` to requests matching ``predicate``; forward the rest."""
    return lambda r: action if predicate(r) else Forward()


def first(n: int, action: Action, predicate: Callable[[Request], bool] = lambda r: True) -> Policy:
    """Apply ``action`` to the first ``n`` requests matching ``predicate``, then forward."""
    lock = threading.Lock()
    left = [n]

    def policy(request: Request) -> Action:
        if not predicate(request):
            return Forward()
        with lock:
            if left[0] > 0:
                left[0] -= 1
                return action
        return Forward()

    return policy


def once_per_request(
    action: Action, predicate: Callable[[Request], bool] = lambda r: True
) -> Policy:
    """The first attempt of every distinct request gets ``action``; its retries go through."""
    lock = threading.Lock()
    faulted: set[str] = set()

    def policy(request: Request) -> Action:
        if not predicate(request):
            return Forward()
        key = request.fingerprint
        with lock:
            if key not in faulted:
                faulted.add(key)
                return action
        return Forward()

    return policy


# --- the proxy ---------------------------------------------------------------------------


class FaultProxy:
    """``with FaultProxy(upstream, ...) as proxy:`` then point a kubeconfig at ``proxy.url``."""

    def __init__(
        self,
        upstream: str,
        *,
        upstream_ca: Path,
        cert: Path,
        key: Path,
        policy: Policy = forward_all,
        tls: bool = True,
        max_connections: int = 256,
        lifetime: float = 300.0,
    ) -> None:
        parts = urlsplit(upstream)
        if parts.scheme != "https" or not parts.hostname or not parts.port:
            raise ValueError(f"upstream must be https://HOST:PORT, not {upstream!r}")
        self._upstream = (parts.hostname, parts.port)
        self._upstream_ctx = ssl.create_default_context(cafile=str(upstream_ca))
        self._server_ctx: ssl.SSLContext | None = None
        if tls:
            self._server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self._server_ctx.load_cert_chain(str(cert), str(key))
        self._policy = policy
        self._max_connections = max_connections
        self._lifetime = lifetime
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._killed = threading.Event()
        self._clients: dict[int, socket.socket] = {}
        self._threads: list[threading.Thread] = []
        self._seen: list[Seen] = []
        self._next_index = 0
        self._next_conn = 0
        self._inflight = 0
        self.max_inflight = 0
        self.connections = 0
        self.refused_connections = 0
        # Loopback only: this proxy forwards whatever it is sent to a real apiserver.
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        self._listener.settimeout(0.2)
        self.port: int = self._listener.getsockname()[1]
        self._accept_thread = threading.Thread(
            target=self._accept_loop, name=f"fault-proxy-{self.port}", daemon=True
        )
        self._timer = threading.Timer(lifetime, self.stop)
        self._timer.daemon = True

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def url(self) -> str:
        scheme = "https" if self._server_ctx is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    def start(self) -> FaultProxy:
        self._accept_thread.start()
        self._timer.start()
        return self

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop accepting, wake every hung handler, close every socket, join the threads."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        self._timer.cancel()
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            clients = list(self._clients.values())
            threads = list(self._threads)
        for sock in clients:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()
        if self._accept_thread.is_alive() and threading.current_thread() is not self._accept_thread:
            self._accept_thread.join(timeout=5)
        end = time.monotonic() + 10
        for thread in threads:
            if thread is not threading.current_thread():
                thread.join(timeout=max(0.0, end - time.monotonic()))

    @property
    def stopped(self) -> bool:
        return self._stopping.is_set()

    def set_policy(self, policy: Policy) -> None:
        self._policy = policy

    @property
    def seen(self) -> list[Seen]:
        with self._lock:
            return list(self._seen)

    def kill(self) -> None:
        """From now on, behave like a dead server (resets, no TLS handshakes)."""
        self._killed.set()

    # -- accepting ----------------------------------------------------------------------

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                full = len(self._clients) >= self._max_connections
                if not full and not self._killed.is_set():
                    conn_id = self._next_conn
                    self._next_conn += 1
                    self.connections += 1
                    self._clients[conn_id] = client
                else:
                    self.refused_connections += 1
            if full or self._killed.is_set():
                _reset(client)
                continue
            thread = threading.Thread(
                target=self._serve, args=(client, conn_id), name=f"fault-conn-{conn_id}"
            )
            thread.daemon = True
            with self._lock:
                self._threads = [t for t in self._threads if t.is_alive()]
                self._threads.append(thread)
            thread.start()

    # -- one client connection ---------------------------------------------------------------

    def _serve(self, raw: socket.socket, conn_id: int) -> None:
        sock: socket.socket = raw
        upstream: http.client.HTTPSConnection | None = None
        try:
            raw.settimeout(IDLE_TIMEOUT)
            if self._server_ctx is not None:
                sock = self._server_ctx.wrap_socket(raw, server_side=True)
                with self._lock:
                    self._clients[conn_id] = sock
            elif raw.recv(1, socket.MSG_PEEK) == b"\x16":
                # A TLS ClientHello sent to plain HTTP: answer as Go's net/http does.
                raw.sendall(b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request")
                return
            reader = sock.makefile("rb")
            while not self._stopping.is_set():
                parsed = _read_request(reader)
                if parsed is None:
                    return
                method, path, headers, body = parsed
                started = time.monotonic()
                with self._lock:
                    index = self._next_index
                    self._next_index += 1
                request = Request(index, method, path, headers, body, conn_id)
                action = Kill() if self._killed.is_set() else self._policy(request)
                if isinstance(action, Forward):
                    if upstream is None:
                        upstream = http.client.HTTPSConnection(
                            *self._upstream, timeout=UPSTREAM_TIMEOUT, context=self._upstream_ctx
                        )
                    with self._counting():
                        code, out_headers, data = _forward(upstream, request, self._upstream)
                    _write_response(sock, code, out_headers, data)
                    self._record(request, action, code, started)
                    continue
                if isinstance(action, Respond):
                    _write_response(sock, action.status, action.headers, action.body)
                    self._record(request, action, action.status, started)
                    continue
                self._record(request, action, None, started)
                if isinstance(action, Kill):
                    self._killed.set()
                    _reset(sock)
                elif isinstance(action, Reset):
                    _reset(sock)
                elif isinstance(action, Hang):
                    self._stopping.wait()
                elif isinstance(action, Raw):
                    sock.sendall(action.data)
                return  # Close, and everything that does not answer, ends the connection
        except (OSError, ValueError):
            return  # the client went away, a TLS handshake failed, or the proxy stopped
        finally:
            if upstream is not None:
                upstream.close()
            with contextlib.suppress(OSError):
                sock.close()
            with self._lock:
                self._clients.pop(conn_id, None)

    @contextlib.contextmanager
    def _counting(self) -> Iterator[None]:
        with self._lock:
            self._inflight += 1
            self.max_inflight = max(self.max_inflight, self._inflight)
        try:
            yield
        finally:
            with self._lock:
                self._inflight -= 1

    def _record(self, request: Request, action: Action, code: int | None, started: float) -> None:
        seen = Seen(request, type(action).__name__, code, started, time.monotonic())
        with self._lock:
            self._seen.append(seen)


# --- HTTP plumbing -----------------------------------------------------------------------


def _reset(sock: socket.socket) -> None:
    """Close with RST instead of FIN (SO_LINGER with a zero timeout)."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()


def _read_request(
    reader: BinaryIO,
) -> tuple[str, str, tuple[tuple[str, str], ...], bytes] | None:
    """Read one request (Content-Length bodies only); None at a clean end of stream."""
    line = reader.readline(MAX_HEADER_BYTES)
    if not line:
        return None
    total = len(line)
    try:
        method, path, _version = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
    except ValueError:
        raise ValueError("malformed request line") from None
    headers: list[tuple[str, str]] = []
    while True:
        line = reader.readline(MAX_HEADER_BYTES)
        total += len(line)
        if not line or total > MAX_HEADER_BYTES:
            raise ValueError("headers too large or truncated")
        if line in (b"\r\n", b"\n"):
            break
        name, _, value = line.decode("latin-1").partition(":")
        headers.append((name.strip(), value.strip()))
    length = 0
    for name, value in headers:
        if name.lower() == "content-length":
            length = int(value)
        if name.lower() == "transfer-encoding":
            raise ValueError("chunked request bodies are not supported")
    if not 0 <= length <= MAX_BODY_BYTES:
        raise ValueError("request body too large")
    body = reader.read(length) if length else b""
    if len(body) != length:
        raise ValueError("truncated request body")
    return method, path, tuple(headers), body


def _forward(
    upstream: http.client.HTTPSConnection, request: Request, target: tuple[str, int]
) -> tuple[int, tuple[tuple[str, str], ...], bytes]:
    """Send ``request`` upstream; a broken upstream becomes a 502 for the client."""
    for attempt in (1, 2):  # a keep-alive connection the apiserver closed: reconnect once
        try:
            upstream.putrequest(
                request.method, request.path, skip_host=True, skip_accept_encoding=True
            )
            upstream.putheader("Host", f"{target[0]}:{target[1]}")
            for name, value in request.headers:
                if name.lower() not in _HOP_BY_HOP:
                    upstream.putheader(name, value)
            if request.body or request.method in ("POST", "PUT", "PATCH"):
                upstream.putheader("Content-Length", str(len(request.body)))
            upstream.endheaders(request.body or None)
            response = upstream.getresponse()
            data = response.read()
            headers = tuple(
                (k, v) for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP
            )
            return response.status, headers, data
        except (OSError, http.client.HTTPException):
            upstream.close()
            if attempt == 2:
                break
    return 502, (), b'{"kind":"Status","code":502,"message":"fault proxy: upstream failed"}'


def _write_response(
    sock: socket.socket, code: int, headers: tuple[tuple[str, str], ...], body: bytes
) -> None:
    reason = http.client.responses.get(code, "Unknown")
    lines = [f"HTTP/1.1 {code} {reason}"]
    lines += [f"{k}: {v}" for k, v in headers if k.lower() not in _HOP_BY_HOP]
    lines.append(f"Content-Length: {len(body)}")
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)


def closed_port() -> int:
    """A loopback port with nothing listening (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


__all__ = [
    "Action",
    "Close",
    "FaultProxy",
    "Forward",
    "Hang",
    "Kill",
    "Policy",
    "Raw",
    "Request",
    "Reset",
    "Respond",
    "Seen",
    "after",
    "closed_port",
    "first",
    "forward_all",
    "once_per_request",
    "status",
    "when",
]
