"""The only module that talks to Kubernetes (and imports the ``kubernetes`` package).

It is imported lazily by the live reviewer, so ``--help`` and offline mode never
pay the ~0.5 s that ``import kubernetes`` costs.

Responsibilities: read kubeconfig files ourselves (strict YAML, merged like
kubectl, secrets collected so any message can be redacted), build an API client
for one context, and send JSON requests with a per-request timeout, a run
deadline, bounded concurrency and retries on 429/5xx that honour Retry-After.

Impersonation set in the kubeconfig user (``as``, ``as-uid``, ``as-groups``,
``as-user-extra``) is sent on every request, on both transports, as kubectl's
impersonating round tripper does (k8s.io/client-go/transport/round_trippers.go),
so SelfSubjectReview and SelfSubjectAccessReview answer for the impersonated user.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import random
import re
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from skycheck import execauth, yamlio
from skycheck.errors import ConfigError
from skycheck.secrets import redact, register
from skycheck.transport import DirectTransport

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
IN_CLUSTER_TOKEN = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")
IN_CLUSTER_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
# Values under these user keys are credentials and must never reach output.
_SECRET_KEYS = ("token", "password", "client-key-data", "client-certificate-data")
_SECRET_PARTS = re.compile(r"token|secret|password|key", re.IGNORECASE)
# Credential keys an exec plugin's answer replaces in the user entry.
_DIRECT_CREDENTIALS = (
    "token",
    "tokenFile",
    "client-certificate",
    "client-certificate-data",
    "client-key",
    "client-key-data",
)


# --- kubeconfig files --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ContextInfo:
    """What skycheck needs to know about one kubeconfig context (no secrets)."""

    name: str
    cluster: str
    user: str
    server: str
    namespace: str | None
    exec_auth: bool
    auth_provider: bool
    impersonates: str | None = None  # the kubeconfig user's ``as``


@dataclass
class Kubeconfig:
    """A merged kubeconfig (like kubectl: first file to name an entry wins)."""

    paths: tuple[str, ...]
    data: dict[str, Any]
    secrets: tuple[str, ...] = ()
    in_cluster: bool = False
    # "clusters/NAME" or "users/NAME" -> the directory of the file that defined it, for
    # relative certificate and token paths (kubectl resolves them against that file).
    origins: dict[str, str] = field(default_factory=dict)

    def entry(self, section: str, name: str) -> tuple[dict[str, Any], Path | None]:
        """The body of a cluster or user entry, and the directory its paths are relative to."""
        item = _named(self.data.get(section, []), name) or {}
        body = item.get(section[:-1]) or {}
        origin = self.origins.get(f"{section}/{name}")
        return (body if isinstance(body, dict) else {}), (Path(origin) if origin else None)

    @property
    def current_context(self) -> str | None:
        cur = self.data.get("current-context")
        return cur if isinstance(cur, str) and cur else None

    def context_names(self) -> tuple[str, ...]:
        return tuple(c["name"] for c in self.data.get("contexts", []))

    def context(self, name: str | None) -> ContextInfo:
        """Look a context up; ``None`` means the current context."""
        name = name or self.current_context
        if not name:
            raise ConfigError(self.where, "current-context", "no current context; pass --context")
        ctx = _named(self.data.get("contexts", []), name)
        if ctx is None:
            known = ", ".join(self.context_names()) or "none"
            raise ConfigError(self.where, f"contexts[{name}]", f"no such context (known: {known})")
        body = ctx.get("context") or {}
        cluster = _named(self.data.get("clusters", []), str(body.get("cluster", ""))) or {}
        user = _named(self.data.get("users", []), str(body.get("user", ""))) or {}
        user_body = user.get("user") or {}
        return ContextInfo(
            name=name,
            cluster=str(body.get("cluster", "")),
            user=str(body.get("user", "")),
            server=str((cluster.get("cluster") or {}).get("server", "")),
            namespace=body.get("namespace") or None,
            exec_auth="exec" in user_body,
            auth_provider="auth-provider" in user_body,
            impersonates=str(user_body["as"]) if user_body.get("as") else None,
        )

    @property
    def where(self) -> str:
        return ":".join(self.paths) or "kubeconfig"


def _named(items: Any, name: str) -> dict[str, Any] | None:
    if not isinstance(items, list):
        return None
    for item in items:
        if isinstance(item, dict) and item.get("name") == name:
            return item
    return None


def _collect_secrets(data: Any) -> list[str]:
    """Credential values in a parsed kubeconfig, whatever its shape (it is not validated yet).

    Collected before validation so that even a message about a malformed file, or a crash
    while reading it, can be redacted.
    """
    found: list[str] = []
    users = data.get("users") if isinstance(data, dict) else None
    for user in users if isinstance(users, list) else ():
        body = user.get("user") if isinstance(user, dict) else None
        if not isinstance(body, dict):
            continue
        for key in _SECRET_KEYS:
            value = body.get(key)
            if isinstance(value, str) and len(value) >= 4:
                found.append(value)
        found += _decoded_key(body.get("client-key-data"))
        provider = body.get("auth-provider")
        config = provider.get("config") if isinstance(provider, dict) else None
        for key, value in config.items() if isinstance(config, dict) else ():
            # id-token, refresh-token, access-token, client-secret...; not client-id or URLs,
            # which are not secret and would mask ordinary words.
            if _SECRET_PARTS.search(str(key)) and isinstance(value, str) and len(value) >= 8:
                found.append(value)
    return found


def _decoded_key(value: Any) -> list[str]:
    """The PEM text inside client-key-data and its base64 lines: the client decodes it."""
    if not isinstance(value, str):
        return []
    try:
        pem = base64.b64decode(value, validate=False).decode("ascii")
    except (ValueError, UnicodeDecodeError):
        return []
    lines = [line.strip() for line in pem.splitlines()]
    return [pem, *(line for line in lines if len(line) >= 16 and not line.startswith("-----"))]


def _validate(data: Any, source: str) -> dict[str, Any]:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(source, "", f"expected a mapping, got {type(data).__name__}")
    for section in ("clusters", "contexts", "users"):
        items = data.get(section)
        if items is None:
            continue
        if not isinstance(items, list):
            raise ConfigError(source, section, "must be a list")
        for i, item in enumerate(items):
            if not isinstance(item, dict) or not isinstance(item.get("name"), str):
                raise ConfigError(source, f"{section}[{i}].name", "must be a string")
            body = item.get(section[:-1])
            if body is not None and not isinstance(body, dict):
                raise ConfigError(source, f"{section}[{i}].{section[:-1]}", "must be a mapping")
    cur = data.get("current-context")
    if cur is not None and not isinstance(cur, str):
        raise ConfigError(source, "current-context", "must be a string")
    return data


def kubeconfig_paths(explicit: str | None) -> list[str]:
    """``--kubeconfig``, else $KUBECONFIG (colon separated), else ~/.kube/config."""
    if explicit:
        return [explicit]
    env = os.environ.get("KUBECONFIG", "")
    if env:
        return [p for p in env.split(os.pathsep) if p]
    return [str(Path.home() / ".kube" / "config")]


def in_cluster_available() -> bool:
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and IN_CLUSTER_TOKEN.exists()


def read_kubeconfig(explicit: str | None = None) -> Kubeconfig:
    """Read and merge kubeconfig files; fall back to in-cluster config in a pod."""
    paths = kubeconfig_paths(explicit)
    existing = [p for p in paths if Path(p).exists()]
    if explicit and not existing:
        raise ConfigError(explicit, "", "kubeconfig file does not exist")
    if not existing:
        if in_cluster_available():
            return Kubeconfig(paths=(), data={}, in_cluster=True)
        raise ConfigError(
            paths[0],
            "",
            "no kubeconfig found (and not running in a pod)",
            hint="pass --kubeconfig, set KUBECONFIG, or use --manifests",
        )
    origins: dict[str, str] = {}
    merged: dict[str, Any] = {"clusters": [], "contexts": [], "users": []}
    secrets: list[str] = []
    for path in existing:
        raw = yamlio.load_one(yamlio.read_text(path, what="kubeconfig"), path, what="kubeconfig")
        secrets += _collect_secrets(raw)
        register(secrets)
        data = _validate(raw, path)
        for section in ("clusters", "contexts", "users"):
            have = {item["name"] for item in merged[section]}
            added = [i for i in data.get(section) or [] if i["name"] not in have]
            merged[section] += added
            origins.update({f"{section}/{i['name']}": str(Path(path).parent) for i in added})
        if "current-context" not in merged and data.get("current-context"):
            merged["current-context"] = data["current-context"]
    return Kubeconfig(paths=tuple(existing), data=merged, secrets=tuple(secrets), origins=origins)


# --- requests ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: dict[str, Any]
    attempts: int = 1


@dataclass
class Limits:
    """Time and concurrency bounds for one run against one API server."""

    request_timeout: float = 10.0  # seconds, per request (connect and read each)
    deadline: float = 60.0  # seconds, for the whole run
    max_inflight: int = 16  # concurrent requests towards one API server
    retries: int = 4  # extra attempts on 429/5xx/connection errors
    started: float = field(default_factory=time.monotonic)

    def remaining(self) -> float:
        return self.deadline - (time.monotonic() - self.started)


class TransportError(Exception):
    """A request failed without an HTTP answer (connection, TLS, timeout)."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


# --max-inflight bounds the requests towards one API server, so contexts that point at the
# same server (a kubeconfig often has one per namespace) share one gate.
_GATES: dict[tuple[str, int], threading.BoundedSemaphore] = {}
_GATES_LOCK = threading.Lock()


def _gate_for(server: str, max_inflight: int) -> threading.BoundedSemaphore:
    key = (server.rstrip("/").lower(), max_inflight)
    with _GATES_LOCK:
        gate = _GATES.get(key)
        if gate is None:
            gate = _GATES[key] = threading.BoundedSemaphore(max_inflight)
        return gate


# The same for the threads that wait on those requests: one pool of --max-inflight workers per
# API server, shared by every context and identity checked against it, instead of a pool per
# review (50 contexts would otherwise start 8 x 16 threads, each with its own stack).
_EXECUTORS: dict[tuple[str, int], ThreadPoolExecutor] = {}


def _executor_for(server: str, max_inflight: int) -> ThreadPoolExecutor:
    key = (server.rstrip("/").lower(), max_inflight)
    with _GATES_LOCK:
        executor = _EXECUTORS.get(key)
        if executor is None:
            executor = _EXECUTORS[key] = ThreadPoolExecutor(
                max_workers=max_inflight, thread_name_prefix="skycheck-api"
            )
        return executor


# --- kubeconfig impersonation -------------------------------------------------------------

IMPERSONATION_KEYS = ("as", "as-uid", "as-groups", "as-user-extra")
# RFC 7230 token characters: anything else in an extra's key is %-encoded, as client-go's
# headerKeyEscape does (k8s.io/client-go/transport/round_trippers.go).
_TOKEN_CHARS = frozenset(
    "!#$&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)


def _header_key_escape(key: str) -> str:
    return "".join(chr(b) if chr(b) in _TOKEN_CHARS else f"%{b:02X}" for b in key.encode("utf-8"))


def impersonation_headers(user: dict[str, Any], source: str, where: str) -> list[tuple[str, str]]:
    """The Impersonate-* headers kubectl sends for a kubeconfig user; [] when it sets none.

    A malformed field, or groups, uid or extra without ``as`` (kubectl would send them
    without a user, which the API server rejects), is a kubeconfig error naming the field.
    """
    name = user.get("as")
    uid = user.get("as-uid")
    groups = user.get("as-groups")
    extra = user.get("as-user-extra")
    for key, value in (("as", name), ("as-uid", uid)):
        if value is not None and not isinstance(value, str):
            raise ConfigError(source, f"{where}: {key}", "must be a string")
    if groups is not None and not (
        isinstance(groups, list) and all(isinstance(g, str) for g in groups)
    ):
        raise ConfigError(source, f"{where}: as-groups", "must be a list of strings")
    if extra is not None and not (
        isinstance(extra, dict)
        and all(
            isinstance(k, str) and isinstance(v, list) and all(isinstance(i, str) for i in v)
            for k, v in extra.items()
        )
    ):
        raise ConfigError(source, f"{where}: as-user-extra", "must map strings to lists of strings")
    if not name:
        for key, value in (("as-uid", uid), ("as-groups", groups), ("as-user-extra", extra)):
            if value:
                raise ConfigError(source, f"{where}: {key}", "needs `as` (the user to impersonate)")
        return []
    headers = [("Impersonate-User", name)]
    if uid:
        headers.append(("Impersonate-Uid", uid))
    headers += [("Impersonate-Group", g) for g in groups or ()]
    for key, values in (extra or {}).items():
        headers += [(f"Impersonate-Extra-{_header_key_escape(key)}", v) for v in values]
    return headers


def _with_impersonation(
    own: list[tuple[str, str]], kubeconfig_headers: list[tuple[str, str]]
) -> list[tuple[str, str]]:
    """A request that impersonates by itself replaces the kubeconfig's impersonation.

    That is client-go's rule (the round tripper steps aside when Impersonate-User is
    already set) and kubectl's (``--as`` overrides the kubeconfig's ``as``).
    """
    if any(name.lower() == "impersonate-user" for name, _ in own):
        return own
    return [*kubeconfig_headers, *own]


# --- relative paths ------------------------------------------------------------------------

_CLUSTER_PATHS = ("certificate-authority",)
_USER_PATHS = ("client-certificate", "client-key", "tokenFile")


def _absolute(path: Any, base: Path | None) -> Any:
    """``path`` against ``base`` when relative (clientcmd's ResolvePaths); others unchanged."""
    if not isinstance(path, str) or not path or base is None or os.path.isabs(path):
        return path
    return str(base / path)


def _resolved(body: dict[str, Any], keys: tuple[str, ...], base: Path | None) -> dict[str, Any]:
    return {k: (_absolute(v, base) if k in keys else v) for k, v in body.items()}


_T = TypeVar("_T")
_R = TypeVar("_R")


class Connection:
    """A client for one kubeconfig context with bounded, retried JSON requests."""

    def __init__(self, kubeconfig: Kubeconfig, context: str | None, limits: Limits) -> None:
        self.limits = limits
        self.secrets = kubeconfig.secrets
        self._direct: DirectTransport | None = None
        self._impersonate: list[tuple[str, str]] = []
        if kubeconfig.in_cluster:
            self._init_client(None, limits)
            return
        self.context = kubeconfig.context(context)
        where = f"context {self.context.name}"
        if _named(kubeconfig.data.get("clusters"), self.context.cluster) is None:
            raise ConfigError(
                kubeconfig.where, where, f"cluster {self.context.cluster!r} is not defined"
            )
        cluster, cluster_base = kubeconfig.entry("clusters", self.context.cluster)
        user, user_base = kubeconfig.entry("users", self.context.user)
        self._impersonate = impersonation_headers(user, kubeconfig.where, where)
        user = {k: v for k, v in user.items() if k not in IMPERSONATION_KEYS}
        if "exec" in user:
            # Run the plugin here, bounded by the run's deadline; the kubernetes client
            # would wait for it forever. Its credentials then act as a token or cert user.
            credential = execauth.fetch(
                user["exec"],
                cluster=cluster,
                user_base=user_base,
                cluster_base=cluster_base,
                timeout=limits.remaining(),
                source=kubeconfig.where,
                where=where,
            )
            user = {
                **{k: v for k, v in user.items() if k not in ("exec", *_DIRECT_CREDENTIALS)},
                **credential.as_user(),
            }
            user_base = None  # nothing relative is left in the credential
        self._direct = DirectTransport.create(
            cluster,
            user,
            cluster_base=cluster_base,
            user_base=user_base,
            source=kubeconfig.where,
            where=where,
            pool_size=limits.max_inflight,
        )
        if self._direct is not None:
            # Token or client-certificate users: no need to import the kubernetes client.
            self.server = self._direct.server
            self._gate = _gate_for(self.server, limits.max_inflight)
            return
        # The client resolves relative paths against the working directory; kubectl
        # resolves them against the file that defined the entry (clientcmd/loader.go).
        self._init_client(
            {
                "current-context": self.context.name,
                "contexts": [
                    {
                        "name": self.context.name,
                        "context": {"cluster": "cluster", "user": "user"},
                    }
                ],
                "clusters": [
                    {
                        "name": "cluster",
                        "cluster": _resolved(cluster, _CLUSTER_PATHS, cluster_base),
                    }
                ],
                "users": [{"name": "user", "user": _resolved(user, _USER_PATHS, user_base)}],
            },
            limits,
            kubeconfig.where,
        )

    def _init_client(
        self, data: dict[str, Any] | None, limits: Limits, where: str = "kubeconfig"
    ) -> None:
        """The kubernetes client, for auth providers, basic auth and in-cluster config.

        ``data`` is a one-context kubeconfig with absolute paths; None means in-cluster.
        """
        from kubernetes import client, config  # the one place kubernetes is imported

        cfg = client.Configuration()
        try:
            if data is None:
                config.load_incluster_config(client_configuration=cfg)
                self.context = ContextInfo(
                    "in-cluster",
                    "in-cluster",
                    "in-cluster",
                    cfg.host,
                    _in_cluster_namespace(),
                    False,
                    False,
                )
            else:
                config.load_kube_config_from_dict(
                    data,
                    context=self.context.name,
                    client_configuration=cfg,
                    persist_config=False,
                )
        except ConfigError:
            raise
        except Exception as exc:  # the client raises many types; all mean a bad config
            message = redact(
                str(exc).splitlines()[0] if str(exc) else type(exc).__name__, self.secrets
            )
            name = self.context.name if data is not None else "in-cluster"
            raise ConfigError(
                where, f"context {name}", f"cannot use this context: {message}"
            ) from None
        cfg.connection_pool_maxsize = limits.max_inflight
        cfg.retries = 0  # retries are ours, with backoff and Retry-After
        self._api = client.ApiClient(cfg)
        self.server = cfg.host
        self._gate = _gate_for(str(cfg.host), limits.max_inflight)

    def map(self, fn: Callable[[_T], _R], items: Iterable[_T]) -> list[_R]:
        """``fn`` over ``items``, in order, on this API server's shared workers.

        Tasks must not wait on this pool themselves (they send requests, nothing else), so
        sharing it between contexts cannot deadlock.
        """
        todo = list(items)
        if len(todo) <= 1:
            return [fn(item) for item in todo]
        return list(_executor_for(str(self.server), self.limits.max_inflight).map(fn, todo))

    def close(self) -> None:
        with contextlib.suppress(Exception):  # closing is best effort
            if self._direct is not None:
                self._direct.close()
            else:
                self._api.close()

    def request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        headers: list[tuple[str, str]] | None = None,
    ) -> Response:
        """Send one request, retrying 429/5xx and transport errors within the deadline."""
        attempt = 0
        last = ""  # why the previous attempt failed, for the deadline message
        while True:
            attempt += 1
            remaining = self.limits.remaining()
            if remaining <= 0:
                raise TransportError(_with_cause("run deadline exceeded", last))
            timeout = min(self.limits.request_timeout, max(remaining, 0.1))
            retry_after: float | None = None
            try:
                response = self._send(method, path, body, headers or [], timeout)
            except TransportError as exc:
                if attempt > self.limits.retries or not exc.retryable:
                    raise
                last = str(exc)
            else:
                if response.status not in RETRY_STATUSES or attempt > self.limits.retries:
                    return Response(response.status, response.body, attempt)
                retry_after = _retry_after(response.body.get("_retry_after"))
                last = f"HTTP {response.status}"
            backoff = min(0.2 * 2 ** (attempt - 1), 5.0) * (0.75 + random.random() / 2)
            wait = max(backoff, retry_after or 0.0)
            if wait >= self.limits.remaining():
                raise TransportError(_with_cause("run deadline exceeded while backing off", last))
            time.sleep(wait)

    def _send(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None,
        headers: list[tuple[str, str]],
        timeout: float,
    ) -> Response:
        from urllib3 import HTTPHeaderDict

        hdrs = {"Accept": "application/json", "Content-Type": "application/json"}
        headers = _with_impersonation(headers, self._impersonate)
        with self._gate:
            try:
                if self._direct is not None:
                    payload = json.dumps(body).encode() if body is not None else None
                    direct = self._direct.send(method, path, payload, headers, timeout)
                    data, status, retry_after = direct.data, direct.status, direct.retry_after
                    return _parse(data, status, retry_after)
                m, url, h, b, p = self._api.param_serialize(
                    method, path, header_params=hdrs, body=body, auth_settings=["BearerToken"]
                )
                # A header may repeat (Impersonate-Group), which a dict cannot carry.
                multi = HTTPHeaderDict(h)
                for name, value in headers:
                    multi.add(name, value)
                raw = self._api.call_api(m, url, multi, b, p, _request_timeout=(timeout, timeout))
                data = raw.read()
                status = raw.status
                retry_after = raw.headers.get("Retry-After")
            except Exception as exc:  # urllib3/ssl/socket errors of every kind
                message, retryable = _transport_message(exc, self.secrets)
                if self._direct is not None and self._direct.proxy:
                    # Behind a proxy the failure may be the proxy's: name it, never blame
                    # the API server alone.
                    message = f"{message} (through proxy {self._direct.proxy})"
                raise TransportError(message, retryable=retryable) from None
        return _parse(data, status, retry_after)


def _parse(data: bytes, status: int, retry_after: str | None) -> Response:
    try:
        parsed = json.loads(data) if data else {}
    except ValueError:
        parsed = {}
    if not isinstance(parsed, dict):
        parsed = {}
    if retry_after is not None:
        parsed["_retry_after"] = retry_after
    return Response(status, parsed)


def _retry_after(value: Any) -> float | None:
    try:
        return min(float(value), 30.0) if value is not None else None
    except (TypeError, ValueError):
        return None


def _with_cause(message: str, last: str) -> str:
    return f"{message} (last error: {last})" if last else message


def _transport_message(exc: BaseException, secrets: Iterable[str]) -> tuple[str, bool]:
    """A short, secret-free reason, and whether trying again could help."""
    text = str(exc) or type(exc).__name__
    lowered = text.lower()
    if "pem lib" in lowered or "key values mismatch" in lowered or "no start line" in lowered:
        # The client certificate or key in the kubeconfig cannot be loaded: also final.
        return "TLS error: cannot load the kubeconfig's client certificate or key", False
    if "certificate" in lowered or "hostname mismatch" in lowered:
        # Verification failures are deterministic: retrying only burns the deadline.
        return "TLS error: server certificate not trusted (wrong CA or server name?)", False
    if "ssl" in lowered or "tls" in lowered:
        short = "TLS error: handshake or record failure (does the server speak HTTPS?)"
    elif "timed out" in lowered or "timeout" in lowered:
        short = "request timed out"
    elif "refused" in lowered:
        short = "connection refused"
    elif "reset" in lowered or "aborted" in lowered or "remote end closed" in lowered:
        short = "connection reset"
    elif "name or service not known" in lowered or "resolve" in lowered:
        short = "cannot resolve the API server host"
    else:
        short = " ".join(text.split())[:200]
    return redact(short, secrets), True


def in_cluster_context() -> ContextInfo:
    """The pseudo-context of in-cluster config; its namespace is the pod's own."""
    return ContextInfo(
        "in-cluster", "in-cluster", "in-cluster", "", _in_cluster_namespace(), False, False
    )


def _in_cluster_namespace() -> str | None:
    try:
        return IN_CLUSTER_NAMESPACE.read_text().strip() or None
    except OSError:
        return None


def status_message(response: Response) -> str:
    """A short server message from a Status body, for errors."""
    msg = response.body.get("message") if isinstance(response.body, dict) else None
    return " ".join(str(msg).split())[:300] if msg else f"HTTP {response.status}"
