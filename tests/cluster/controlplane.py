"""Run etcd + kube-apiserver (+ kube-controller-manager) on loopback for integration tests.

The apiserver runs with ``--authorization-mode=RBAC``, so every answer the tests get comes from
the real RBAC authorizer: this is the oracle skycheck's live and offline reviewers are checked
against. Identities are bearer tokens from a static token file (an admin in ``system:masters``
plus a few test users) and service-account tokens from the TokenRequest API.

kube-controller-manager runs only three controllers, each needed for realism:
``clusterrole-aggregation-controller`` (fills the built-in ``admin``/``edit``/``view`` roles, which
the apiserver leaves with ``rules: null``), ``serviceaccount-controller`` (``default`` SAs) and
``namespace-controller`` (finishes namespace deletion so per-test namespaces go away).

Cleanup is belt and braces, because a leaked etcd/apiserver survives the test run and eats a
2-core CI box: children run in their own process group (a Ctrl-C to pytest does not kill them
half-way through shutdown), are stopped by ``stop()``, by an ``atexit`` hook, by SIGTERM/SIGHUP
handlers, and, if Python itself is SIGKILLed, by ``PR_SET_PDEATHSIG``. Detached clusters
(``python -m tests.cluster up``) skip the last three on purpose and record their pids instead.

The harness talks to the cluster with the built ``kubectl`` and plain ``urllib`` HTTPS, never
the ``kubernetes`` Python package that skycheck wraps (a shared bug must not hide itself).
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import ctypes
import json
import os
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import yaml

from tests.cluster import certs
from tests.cluster.build import Binaries, ensure_binaries

ADMIN_USER = "skycheck-admin"
STATE_FILE = "state.json"
PIDS_FILE = "pids.json"
# Generous: the slowest part (apiserver post-start hooks) takes 5-15 s on 2 cores, but a CI box
# building something else in parallel can be several times slower.
DEFAULT_START_TIMEOUT = 120.0
DEFAULT_STOP_TIMEOUT = 15.0
# Free ports are picked by binding :0 and closing, so another process can grab one before our
# child binds it. Rare; retry the whole start with fresh ports when it happens.
PORT_RETRIES = 3

_PR_SET_PDEATHSIG = 1

# The controllers every test cluster runs (see the module docstring); the SkyPilot lab passes
# a longer list through ``ControlPlane(controllers=...)``.
DEFAULT_CONTROLLERS = (
    "clusterrole-aggregation-controller",
    "serviceaccount-controller",
    "namespace-controller",
)


class ControlPlaneError(RuntimeError):
    """The control plane failed to start, answer or stop."""


def _new_token() -> str:
    # Hex only: the token file is CSV, so a token must never contain a comma or a quote.
    return secrets.token_hex(24)


@dataclass(frozen=True)
class TokenUser:
    """A user authenticated by a static bearer token (``--token-auth-file``)."""

    name: str
    groups: tuple[str, ...] = ()
    token: str = field(default_factory=_new_token, repr=False)

    def csv_line(self) -> str:
        """One line of the apiserver token file: ``token,user,uid,"g1,g2"``."""
        for value in (self.name, *self.groups):
            if any(c in value for c in ',"\n'):
                raise ValueError(f'token user/group names cannot contain , " or newline: {value!r}')
        groups = ",".join(self.groups)
        return f'{self.token},{self.name},{self.name},"{groups}"'


# Predefined test users. The apiserver adds system:authenticated to each by itself. "alice" has
# a group so tests can grant through group subjects; "bob" has none (only what he is bound to).
DEFAULT_TEST_USERS: tuple[TokenUser, ...] = (
    TokenUser("alice", ("skycheck:testers",)),
    TokenUser("bob"),
)

AUDIT_POLICY = """\
# Written by tests/cluster/controlplane.py: log every request once, at Metadata level (who,
# verb, resource, response code; no bodies, so no tokens in the log).
apiVersion: audit.k8s.io/v1
kind: Policy
# RequestReceived would log each request twice; ResponseComplete (and ResponseStarted for
# watches) still covers every request.
omitStages: ["RequestReceived"]
rules:
  - level: Metadata
"""


@dataclass
class _Process:
    """A child we started (``popen`` set) or one recorded in pids.json by a detached ``up``."""

    name: str
    pid: int
    argv: list[str]
    log: Path
    popen: subprocess.Popen[bytes] | None = None

    def running(self) -> bool:
        if self.popen is not None:
            return self.popen.poll() is None
        return _pid_alive(self.pid)


# Every ControlPlane that owns live, non-detached children, for the atexit/signal handlers.
_LIVE: set[ControlPlane] = set()
_LIVE_LOCK = threading.Lock()
_HANDLERS_INSTALLED = False


def _stop_all() -> None:
    with _LIVE_LOCK:
        planes = list(_LIVE)
    for plane in planes:
        with contextlib.suppress(Exception):
            plane.stop(timeout=5.0)


def _on_signal(signum: int, frame: FrameType | None) -> None:
    _stop_all()
    previous = _PREVIOUS_HANDLERS.get(signum, signal.SIG_DFL)
    if callable(previous):
        previous(signum, frame)
        return
    # Restore the old disposition and re-deliver, so the exit status still says "killed by
    # SIGTERM" to whoever is waiting on us.
    signal.signal(signum, previous)
    os.kill(os.getpid(), signum)


_PREVIOUS_HANDLERS: dict[int, Any] = {}


def _install_cleanup_handlers() -> None:
    global _HANDLERS_INSTALLED
    if _HANDLERS_INSTALLED:
        return
    _HANDLERS_INSTALLED = True
    atexit.register(_stop_all)
    # signal.signal only works on the main thread; elsewhere atexit + pdeathsig must do.
    if threading.current_thread() is not threading.main_thread():
        return
    # SIGINT is left alone: Python turns it into KeyboardInterrupt, pytest tears fixtures down
    # and atexit runs. SIGTERM/SIGHUP would otherwise kill Python without running atexit.
    for signum in (signal.SIGTERM, signal.SIGHUP):
        _PREVIOUS_HANDLERS[signum] = signal.getsignal(signum)
        signal.signal(signum, _on_signal)


def _die_with_parent_hook() -> Callable[[], None]:
    """A preexec_fn asking the kernel to SIGKILL the child if this process dies (even -9)."""
    libc = ctypes.CDLL(None, use_errno=True)
    parent = os.getpid()

    def hook() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        # The parent may have died between fork and prctl; then nobody would ever kill us.
        if os.getppid() != parent:
            os._exit(1)

    return hook


def _pid_alive(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie (a reaped-later corpse is dead to us)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # Field 3, after the parenthesised command name (which may itself contain spaces).
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def _zombie_or_same(pid: int, argv: list[str]) -> bool:
    """True while ``pid`` is a zombie or still runs ``argv`` (not a reused pid)."""
    return (Path(f"/proc/{pid}").exists() and not _pid_alive(pid)) or _cmdline(pid) == argv


def _cmdline(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return [part.decode(errors="replace") for part in raw.split(b"\0")[:-1]]


def _free_ports(count: int) -> list[int]:
    # Hold all sockets until every port is chosen so we never get the same port twice.
    socks = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            socks.append(sock)
        return [s.getsockname()[1] for s in socks]
    finally:
        for sock in socks:
            sock.close()


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def _child_env() -> dict[str, str]:
    # Hermetic children: a developer's ETCD_* or KUBECONFIG must not change what we run.
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("ETCD_") and k not in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST")
    }


class ControlPlane:
    """etcd + kube-apiserver (+ kube-controller-manager) in ``directory``.

    Use as a context manager or call :meth:`start` / :meth:`stop`. ``users`` adds static-token
    users (the admin is always there). ``audit=True`` logs every request at Metadata level to
    ``<directory>/audit.log``. ``detach=True`` (used by ``python -m tests.cluster up``) lets the
    processes outlive this Python process; stop them later with ``ControlPlane.attach(dir).stop()``.
    """

    def __init__(
        self,
        directory: Path | str,
        *,
        users: Sequence[TokenUser] = DEFAULT_TEST_USERS,
        audit: bool = False,
        controller_manager: bool = True,
        binaries: Binaries | None = None,
        detach: bool = False,
        controllers: Sequence[str] = DEFAULT_CONTROLLERS,
        extra_apiserver_args: Sequence[str] = (),
    ) -> None:
        self.directory = Path(directory).resolve()
        self.audit = audit
        self.controller_manager = controller_manager
        self.controllers = tuple(controllers)
        self.extra_apiserver_args = tuple(extra_apiserver_args)
        self.detach = detach
        self._binaries = binaries
        admin = TokenUser(ADMIN_USER, ("system:masters",))
        names = [u.name for u in users]
        if ADMIN_USER in names or len(set(names)) != len(names):
            raise ValueError(f"duplicate or reserved token user names: {names}")
        self.users: dict[str, TokenUser] = {u.name: u for u in (admin, *users)}
        self._processes: list[_Process] = []
        self._kubectl: Path | None = None
        self._port: int | None = None
        self._ssl: ssl.SSLContext | None = None
        # urllib honours HTTPS_PROXY; a proxy must never see (or break) loopback test traffic.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def __repr__(self) -> str:
        return f"ControlPlane({str(self.directory)!r}, server={self._server_or_none()!r})"

    # ------------------------------------------------------------------ paths and properties

    @property
    def server(self) -> str:
        """``https://127.0.0.1:<port>`` of the apiserver."""
        if self._port is None:
            raise ControlPlaneError("control plane not started")
        return f"https://127.0.0.1:{self._port}"

    def _server_or_none(self) -> str | None:
        return None if self._port is None else self.server

    @property
    def admin_kubeconfig(self) -> Path:
        """Kubeconfig of the ``system:masters`` token user."""
        return self.directory / "admin.kubeconfig"

    @property
    def kubectl_path(self) -> Path:
        """The kubectl built with (and matching) this apiserver."""
        if self._kubectl is None:
            raise ControlPlaneError("control plane not started")
        return self._kubectl

    @property
    def ca_cert(self) -> Path:
        """CA that signed the apiserver's serving certificate."""
        return self.directory / "pki" / "ca.crt"

    @property
    def audit_log(self) -> Path:
        """Audit log path (only written when started with ``audit=True``)."""
        return self.directory / "audit.log"

    @property
    def admin_token(self) -> str:
        """Bearer token of the admin (group ``system:masters``)."""
        return self.users[ADMIN_USER].token

    def user_token(self, name: str) -> str:
        """Bearer token of a static token user."""
        return self.users[name].token

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> ControlPlane:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, timeout: float = DEFAULT_START_TIMEOUT) -> ControlPlane:
        """Start every process and wait until RBAC and (if enabled) aggregation are ready."""
        if self._processes:
            raise ControlPlaneError("already started")
        binaries = self._binaries or ensure_binaries()
        self._kubectl = binaries.kubectl
        self.directory.mkdir(parents=True, exist_ok=True)
        self._prepare_files()
        _install_cleanup_handlers()
        deadline = time.monotonic() + timeout
        for attempt in range(1, PORT_RETRIES + 1):
            # Detached planes are still in _LIVE while starting, so a failed or interrupted
            # `up` cleans up after itself; only a fully started one is let go.
            with _LIVE_LOCK:
                _LIVE.add(self)
            try:
                self._start_once(binaries, deadline)
                break
            except ControlPlaneError as err:
                self.stop()
                if "address already in use" not in str(err) or attempt == PORT_RETRIES:
                    raise
            except BaseException:
                self.stop()
                raise
        self._write_state(binaries)
        if self.detach:
            with _LIVE_LOCK:
                _LIVE.discard(self)
        return self

    def stop(self, timeout: float = DEFAULT_STOP_TIMEOUT) -> None:
        """Stop the apiserver and controller manager, then etcd (SIGTERM, then SIGKILL)."""
        # etcd last: an apiserver losing etcd first spends its shutdown retrying storage.
        front = [p for p in self._processes if p.name != "etcd"]
        back = [p for p in self._processes if p.name == "etcd"]
        for group in (front, back):
            for proc in group:
                self._signal(proc, signal.SIGTERM)
            end = time.monotonic() + timeout
            for proc in group:
                if not self._wait_gone(proc, max(0.0, end - time.monotonic())):
                    self._signal(proc, signal.SIGKILL)
                    self._wait_gone(proc, 5.0)
        # Detached processes were orphaned to PID 1, which alone can reap them; on this CI
        # image it does so lazily (~1.5 s), and until then they linger as zombies that
        # `pgrep kube-apiserver` still lists. Wait for that so "down" means gone.
        orphans = [p for p in self._processes if p.popen is None]
        end = time.monotonic() + 10.0
        while time.monotonic() < end and any(_zombie_or_same(p.pid, p.argv) for p in orphans):
            time.sleep(0.05)
        self._processes = []
        with _LIVE_LOCK:
            _LIVE.discard(self)
        pids = self.directory / PIDS_FILE
        pids.unlink(missing_ok=True)

    def running(self) -> bool:
        """True if any process of this plane is still alive."""
        return any(
            p.running() and (p.popen is not None or _cmdline(p.pid) == p.argv)
            for p in self._processes
        )

    @classmethod
    def attach(cls, directory: Path | str) -> ControlPlane:
        """A handle on a cluster started elsewhere (``up``) in ``directory``; ``stop()`` works."""
        directory = Path(directory).resolve()
        try:
            state = json.loads((directory / STATE_FILE).read_text())
        except (OSError, ValueError) as err:
            raise ControlPlaneError(f"{directory} is not a running cluster dir: {err}") from err
        users = [TokenUser(u["name"], tuple(u["groups"]), u["token"]) for u in state["users"]]
        plane = cls(
            directory,
            users=[u for u in users if u.name != ADMIN_USER],
            audit=state["audit"],
            controller_manager=state["controller_manager"],
            detach=True,
        )
        plane.users = {u.name: u for u in users}
        plane._port = state["port"]
        plane._kubectl = Path(state["kubectl"])
        with contextlib.suppress(OSError, ValueError):
            for rec in json.loads((directory / PIDS_FILE).read_text()):
                plane._processes.append(
                    _Process(rec["name"], rec["pid"], rec["argv"], Path(rec["log"]))
                )
        return plane

    def _prepare_files(self) -> None:
        certs.generate(self.directory / "pki")
        token_file = self.directory / "tokens.csv"
        fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write("".join(u.csv_line() + "\n" for u in self.users.values()))
        if self.audit:
            (self.directory / "audit-policy.yaml").write_text(AUDIT_POLICY)

    def _start_once(self, binaries: Binaries, deadline: float) -> None:
        etcd_port, api_port = _free_ports(2)
        self._port = api_port
        self._ssl = ssl.create_default_context(cafile=str(self.ca_cert))
        data_dir = self.directory / "etcd-data"
        shutil.rmtree(data_dir, ignore_errors=True)
        etcd_url = f"http://127.0.0.1:{etcd_port}"
        self._spawn(
            "etcd",
            [
                str(binaries.etcd),
                f"--data-dir={data_dir}",
                f"--listen-client-urls={etcd_url}",
                f"--advertise-client-urls={etcd_url}",
                # Single member: the peer listener is never dialled, any free port will do.
                "--listen-peer-urls=http://127.0.0.1:0",
                # Throwaway data: fsync only slows tests (and wears CI disks).
                "--unsafe-no-fsync",
                "--log-level=warn",
            ],
        )
        self._wait(deadline, "etcd /health", lambda: self._etcd_healthy(etcd_url))

        pki = self.directory / "pki"
        api_argv = [
            str(binaries.kube_apiserver),
            f"--etcd-servers={etcd_url}",
            "--bind-address=127.0.0.1",
            f"--secure-port={api_port}",
            "--advertise-address=127.0.0.1",
            # No kubelet/kube-proxy here: do not maintain endpoints for the kubernetes service.
            "--endpoint-reconciler-type=none",
            f"--tls-cert-file={pki / 'serving.crt'}",
            f"--tls-private-key-file={pki / 'serving.key'}",
            f"--client-ca-file={pki / 'ca.crt'}",
            f"--token-auth-file={self.directory / 'tokens.csv'}",
            "--authorization-mode=RBAC",
            f"--service-account-issuer=https://127.0.0.1:{api_port}",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            "--service-cluster-ip-range=10.0.0.0/24",
            # Pods are never run here; without this, creating one needs the SA controller.
            "--disable-admission-plugins=ServiceAccount",
            f"--cert-dir={self.directory / 'apiserver-certs'}",
        ]
        if self.audit:
            api_argv += [
                f"--audit-policy-file={self.directory / 'audit-policy.yaml'}",
                f"--audit-log-path={self.audit_log}",
                # blocking: the event is written in the request's goroutine, never dropped or
                # buffered, so a test can read the log right after the call (batch could lag).
                "--audit-log-mode=blocking",
                # Never rotate: audit windows read one file (the default rotates at 100 MB).
                "--audit-log-maxsize=0",
            ]
        api_argv += self.extra_apiserver_args
        self._spawn("kube-apiserver", api_argv)
        self._wait(deadline, "rbac/bootstrap-roles in /readyz", self._bootstrap_roles_ready)
        self._wait(
            deadline, "namespace default", lambda: self._exists("/api/v1/namespaces/default")
        )
        self.write_kubeconfig(self.admin_kubeconfig, token=self.admin_token, user_name=ADMIN_USER)

        if self.controller_manager:
            self._spawn(
                "kube-controller-manager",
                [
                    str(binaries.kube_controller_manager),
                    f"--kubeconfig={self.admin_kubeconfig}",
                    "--controllers=" + ",".join(self.controllers),
                    "--leader-elect=false",
                    # No serving endpoint: nothing scrapes it, and it would need a port + certs.
                    "--secure-port=0",
                ],
            )
            self._wait(deadline, "aggregated rules in ClusterRole edit", self._edit_aggregated)
            self._wait(
                deadline,
                "serviceaccount default/default",
                lambda: self._exists("/api/v1/namespaces/default/serviceaccounts/default"),
            )

    def spawn(self, name: str, argv: list[str]) -> None:
        """Start one more child (log ``<dir>/<name>.log``) that :meth:`stop` stops first.

        For components layered on a started plane (the SkyPilot lab's scheduler and kwok):
        they get the same process-group, pdeathsig and atexit cleanup as the core processes.
        """
        if not self._processes:
            raise ControlPlaneError("control plane not started")
        if self.detach:
            raise ControlPlaneError(
                "spawn() is for attached planes only (pids.json is written once)"
            )
        self._spawn(name, argv)

    def _spawn(self, name: str, argv: list[str]) -> None:
        log = self.directory / f"{name}.log"
        with log.open("ab") as out:
            popen = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.directory,
                env=_child_env(),
                # Own session/process group: terminal Ctrl-C goes to pytest only, and we can
                # signal the whole group. Also required so `up` can detach.
                start_new_session=True,
                preexec_fn=None if self.detach else _die_with_parent_hook(),
            )
        self._processes.append(_Process(name, popen.pid, argv, log, popen))

    def _wait(self, deadline: float, what: str, ready: Callable[[], bool]) -> None:
        while True:
            for proc in self._processes:
                if not proc.running():
                    raise ControlPlaneError(
                        f"{proc.name} exited while waiting for {what}\n{self._log_tails()}"
                    )
            try:
                if ready():
                    return
            except (OSError, ValueError, ControlPlaneError):
                pass  # not listening yet, or a 5xx while the server is still starting
            if time.monotonic() > deadline:
                raise ControlPlaneError(f"timed out waiting for {what}\n{self._log_tails()}")
            time.sleep(0.1)

    def _log_tails(self) -> str:
        return "\n".join(
            f"--- {proc.log.name} (last lines) ---\n{_tail(proc.log)}" for proc in self._processes
        )

    def _etcd_healthy(self, url: str) -> bool:
        with self._opener.open(f"{url}/health", timeout=2) as resp:
            return bool(json.load(resp).get("health") == "true")

    def _bootstrap_roles_ready(self) -> bool:
        status, body = self._raw("GET", "/readyz?verbose")
        # /readyz is 500 until every check passes; the body lists them either way.
        return status in (200, 500) and "[+]poststarthook/rbac/bootstrap-roles ok" in body

    def _edit_aggregated(self) -> bool:
        role = self.get("/apis/rbac.authorization.k8s.io/v1/clusterroles/edit")
        return bool(role and role.get("rules"))

    def _exists(self, path: str) -> bool:
        return self.get(path) is not None

    @staticmethod
    def _signal(proc: _Process, signum: int) -> None:
        if proc.popen is None:
            # Recorded pid from a detached `up`: only signal it if it is still the same program
            # (the pid may have been reused since).
            if _cmdline(proc.pid) != proc.argv:
                return
        elif proc.popen.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            # The child leads its own process group; signal the group so any helper processes
            # it forked go too, but only if it still leads that group.
            if os.getpgid(proc.pid) == proc.pid:
                os.killpg(proc.pid, signum)
            else:
                os.kill(proc.pid, signum)

    @staticmethod
    def _wait_gone(proc: _Process, timeout: float) -> bool:
        if proc.popen is not None:
            try:
                proc.popen.wait(timeout=timeout)
                return True
            except subprocess.TimeoutExpired:
                return False
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if not _pid_alive(proc.pid) or _cmdline(proc.pid) != proc.argv:
                return True
            time.sleep(0.05)
        return not _pid_alive(proc.pid)

    def _write_state(self, binaries: Binaries) -> None:
        state = {
            "server": self.server,
            "port": self._port,
            "kubectl": str(binaries.kubectl),
            "kubeconfig": str(self.admin_kubeconfig),
            "audit": self.audit,
            "controller_manager": self.controller_manager,
            "k8s_version": binaries.k8s_version,
            "etcd_version": binaries.etcd_version,
            "users": [
                {"name": u.name, "groups": list(u.groups), "token": u.token}
                for u in self.users.values()
            ],
        }
        pids = [
            {"name": p.name, "pid": p.pid, "argv": p.argv, "log": str(p.log)}
            for p in self._processes
        ]
        for name, payload in ((STATE_FILE, state), (PIDS_FILE, pids)):
            fd = os.open(self.directory / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as handle:
                json.dump(payload, handle, indent=2)

    # ------------------------------------------------------------------ HTTP helpers

    def _raw(
        self, method: str, path: str, body: object = None, token: str | None = None
    ) -> tuple[int, str]:
        if self._ssl is None:
            self._ssl = ssl.create_default_context(cafile=str(self.ca_cert))
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.server + path, data=data, method=method)
        request.add_header("Authorization", f"Bearer {token or self.admin_token}")
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        https = urllib.request.HTTPSHandler(context=self._ssl)
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), https)
        try:
            with opener.open(request, timeout=30) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode(errors="replace")

    def request(
        self,
        method: str,
        path: str,
        body: object = None,
        *,
        token: str | None = None,
        ok: Sequence[int] = (200, 201, 202),
    ) -> dict[str, Any]:
        """Call the API (as admin unless ``token``); raise ControlPlaneError unless ``ok``."""
        status, text = self._raw(method, path, body, token)
        if status not in ok:
            raise ControlPlaneError(f"{method} {path}: HTTP {status}: {text[:500]}")
        result: dict[str, Any] = json.loads(text) if text else {}
        return result

    def get(self, path: str, *, token: str | None = None) -> dict[str, Any] | None:
        """GET ``path`` as admin (or ``token``); ``None`` on 404."""
        status, text = self._raw("GET", path, token=token)
        if status == 404:
            return None
        if status != 200:
            raise ControlPlaneError(f"GET {path}: HTTP {status}: {text[:500]}")
        result: dict[str, Any] = json.loads(text)
        return result

    # ------------------------------------------------------------------ test helpers

    def create_namespace(
        self, name: str, *, labels: Mapping[str, str] | None = None, exist_ok: bool = True
    ) -> None:
        """Create namespace ``name`` (no error if it exists and ``exist_ok``)."""
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        if labels:
            body["metadata"]["labels"] = dict(labels)  # type: ignore[index]
        self.request("POST", "/api/v1/namespaces", body, ok=(201, 409) if exist_ok else (201,))

    def delete_namespace(self, name: str, *, wait: bool = False, timeout: float = 60.0) -> None:
        """Delete a namespace; with ``wait``, until the namespace controller has finished."""
        self.request("DELETE", f"/api/v1/namespaces/{name}", ok=(200, 202, 404))
        if not wait:
            return
        end = time.monotonic() + timeout
        while self._exists(f"/api/v1/namespaces/{name}"):
            if time.monotonic() > end:
                raise ControlPlaneError(f"namespace {name} still terminating after {timeout}s")
            time.sleep(0.2)

    def create_service_account(self, namespace: str, name: str, *, exist_ok: bool = True) -> None:
        """Create a ServiceAccount (no error if it exists and ``exist_ok``)."""
        body = {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": name, "namespace": namespace},
        }
        ok = (201, 409) if exist_ok else (201,)
        self.request("POST", f"/api/v1/namespaces/{namespace}/serviceaccounts", body, ok=ok)

    def token(
        self,
        namespace: str,
        service_account: str,
        *,
        expiration_seconds: int = 3600,
        audiences: Sequence[str] = (),
    ) -> str:
        """A bound token for a ServiceAccount via the TokenRequest API (no controller needed)."""
        spec: dict[str, Any] = {"expirationSeconds": expiration_seconds}
        if audiences:
            spec["audiences"] = list(audiences)
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}
        path = f"/api/v1/namespaces/{namespace}/serviceaccounts/{service_account}/token"
        token: str = self.request("POST", path, body)["status"]["token"]
        return token

    def kubectl(
        self,
        *args: str,
        kubeconfig: Path | str | None = None,
        input: str | None = None,
        check: bool = False,
        timeout: float = 60.0,
    ) -> subprocess.CompletedProcess[str]:
        """Run the built kubectl (admin kubeconfig unless ``kubeconfig``)."""
        env = _child_env()
        # Per-cluster discovery cache: ~/.kube/cache would mix up clusters that reuse a port.
        env["KUBECACHEDIR"] = str(self.directory / "kube-cache")
        argv = [
            str(self.kubectl_path),
            f"--kubeconfig={kubeconfig or self.admin_kubeconfig}",
            *args,
        ]
        result = subprocess.run(
            argv, input=input, capture_output=True, text=True, env=env, timeout=timeout
        )
        if check and result.returncode != 0:
            raise ControlPlaneError(
                f"kubectl {' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}"
            )
        return result

    def apply(self, source: str | os.PathLike[str], *, namespace: str | None = None) -> str:
        """``kubectl apply`` a path (``Path``, or a str naming a file) or YAML text."""
        return self._apply_or_delete("apply", source, namespace, [])

    def delete(
        self,
        source: str | os.PathLike[str],
        *,
        namespace: str | None = None,
        wait: bool = False,
    ) -> str:
        """``kubectl delete --ignore-not-found`` a path or YAML text."""
        extra = ["--ignore-not-found", f"--wait={'true' if wait else 'false'}"]
        return self._apply_or_delete("delete", source, namespace, extra)

    def _apply_or_delete(
        self,
        verb: str,
        source: str | os.PathLike[str],
        namespace: str | None,
        extra: list[str],
    ) -> str:
        args = [verb, *extra]
        if namespace:
            args += ["-n", namespace]
        text: str | None
        if isinstance(source, os.PathLike) or ("\n" not in source and Path(source).is_file()):
            args += ["-f", os.fspath(source)]
            text = None
        else:
            args += ["-f", "-"]
            text = str(source)
        return self.kubectl(*args, input=text, check=True).stdout

    def write_kubeconfig(
        self,
        path: Path | str,
        *,
        token: str,
        user_name: str = "skycheck-test-user",
        namespace: str | None = None,
        context_name: str = "skycheck-test",
        cluster_name: str = "skycheck-test",
    ) -> Path:
        """Write a self-contained kubeconfig (CA embedded) for a bearer token; mode 0600."""
        context: dict[str, str] = {"cluster": cluster_name, "user": user_name}
        if namespace:
            context["namespace"] = namespace
        ca_data = base64.b64encode(self.ca_cert.read_bytes()).decode()
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": cluster_name,
                    "cluster": {"server": self.server, "certificate-authority-data": ca_data},
                }
            ],
            "users": [{"name": user_name, "user": {"token": token}}],
            "contexts": [{"name": context_name, "context": context}],
            "current-context": context_name,
            "preferences": {},
        }
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            yaml.safe_dump(config, handle, sort_keys=False)
        return target

    def kubeconfig_for_service_account(
        self, path: Path | str, namespace: str, name: str, *, create: bool = True
    ) -> Path:
        """Kubeconfig authenticating as ServiceAccount ``namespace/name`` (created if needed)."""
        if create:
            self.create_service_account(namespace, name)
        return self.write_kubeconfig(
            path,
            token=self.token(namespace, name),
            user_name=f"{namespace}-{name}",
            namespace=namespace,
        )

    def kubeconfig_for_user(
        self, path: Path | str, name: str, *, namespace: str | None = None
    ) -> Path:
        """Kubeconfig authenticating as static token user ``name``."""
        return self.write_kubeconfig(
            path, token=self.user_token(name), user_name=name, namespace=namespace
        )

    def can_i(
        self,
        verb: str,
        resource: str,
        namespace: str | None = None,
        *,
        as_user: str | None = None,
        as_groups: Sequence[str] = (),
        subresource: str | None = None,
        all_namespaces: bool = False,
        kubeconfig: Path | str | None = None,
    ) -> bool:
        """``kubectl auth can-i``: True for "yes", False for "no", ControlPlaneError otherwise.

        ``resource`` is as kubectl takes it (``pods``, ``deployments.apps``, ``pods/NAME``, or a
        non-resource URL like ``/healthz``); use ``subresource`` for e.g. ``pods`` + ``exec``:
        ``pods/exec`` would be read as a pod named "exec".
        """
        args = ["auth", "can-i", verb, resource]
        if subresource:
            args.append(f"--subresource={subresource}")
        if all_namespaces:
            args.append("--all-namespaces")
        elif namespace is not None:
            args += ["-n", namespace]
        if as_user:
            args.append(f"--as={as_user}")
        args += [f"--as-group={g}" for g in as_groups]
        result = self.kubectl(*args, kubeconfig=kubeconfig)
        # can-i exits 1 for both "no" and errors; stdout tells them apart ("no" may carry a
        # " - reason" suffix when the authorizer gives one).
        answer = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
        if result.returncode == 0 and answer == "yes":
            return True
        if result.returncode == 1 and re.fullmatch(r"no( - .*)?", answer):
            return False
        raise ControlPlaneError(
            f"kubectl {' '.join(args)}: exit {result.returncode}, "
            f"stdout {result.stdout.strip()!r}, stderr {result.stderr.strip()!r}"
        )

    # ------------------------------------------------------------------ audit helpers

    def audit_events(self, *, user: str | None = None) -> list[dict[str, Any]]:
        """Parsed audit events so far, optionally only those made by ``user`` (username)."""
        if not self.audit:
            raise ControlPlaneError("started without audit=True")
        events: list[dict[str, Any]] = []
        with contextlib.suppress(FileNotFoundError), self.audit_log.open() as handle:
            for line in handle:
                if not line.strip():
                    continue
                event = json.loads(line)
                if user is None or event.get("user", {}).get("username") == user:
                    events.append(event)
        return events

    def audit_mark(self) -> str:
        """Make a uniquely named request and wait until its audit event is in the log.

        Events of requests that completed before the mark are then (all but certainly) in the
        log too: use two marks to bracket what a test did, see :meth:`audit_events_between`.
        """
        marker = f"skycheck-audit-mark-{secrets.token_hex(6)}"
        self._raw("GET", f"/api/v1/namespaces/{marker}")
        end = time.monotonic() + 10
        while time.monotonic() < end:
            if any(marker in e.get("requestURI", "") for e in self.audit_events(user=ADMIN_USER)):
                # The apiserver writes an event after it has answered; give requests that
                # finished just before the mark the same moment to land.
                time.sleep(0.05)
                return marker
            time.sleep(0.02)
        raise ControlPlaneError(f"audit mark {marker} never reached {self.audit_log}")

    def audit_events_between(
        self, start: str, end: str, *, exclude_admin: bool = True
    ) -> list[dict[str, Any]]:
        """Events logged between two :meth:`audit_mark` markers (admin traffic left out)."""
        events = self.audit_events()
        idx = [i for i, e in enumerate(events) if (start in e.get("requestURI", ""))]
        jdx = [i for i, e in enumerate(events) if (end in e.get("requestURI", ""))]
        if not idx or not jdx:
            raise ControlPlaneError("audit markers not found in the log")
        window = events[idx[0] + 1 : jdx[0]]
        if exclude_admin:
            window = [e for e in window if e.get("user", {}).get("username") != ADMIN_USER]
        return window


@contextlib.contextmanager
def running(directory: Path | str, **kwargs: Any) -> Iterator[ControlPlane]:
    """``with running(tmp) as cp:`` shorthand for ``with ControlPlane(tmp, ...) as cp:``."""
    with ControlPlane(directory, **kwargs) as plane:
        yield plane
