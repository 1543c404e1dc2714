"""HTTPS to an API server straight from kubeconfig data, without the kubernetes client.

``import kubernetes`` costs 0.3-0.5 s, most of a live run. The common kubeconfig
users (a bearer token, a token file, a client certificate, and the credentials an
exec plugin returned, see ``execauth``) need nothing from it: this module talks to
the server with urllib3 and an ``ssl`` context built from the kubeconfig, through
the proxy kubectl would use (``proxies``). Everything else (auth providers, basic
auth, plain-http servers, SOCKS proxies) returns None from ``DirectTransport.create``
and the caller falls back to the kubernetes client. Impersonation set in the
kubeconfig is added by the caller (``kube.Connection``) on both paths.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import urllib3

from skycheck import proxies
from skycheck.errors import ConfigError
from skycheck.secrets import register

# User keys this transport handles itself; any other key means "use the kubernetes client".
_DIRECT_USER_KEYS = frozenset(
    {
        "token",
        "tokenFile",
        "client-certificate",
        "client-certificate-data",
        "client-key",
        "client-key-data",
    }
)
_DIRECT_CLUSTER_KEYS = frozenset(
    {
        "server",
        "certificate-authority",
        "certificate-authority-data",
        "insecure-skip-tls-verify",
        "tls-server-name",
        "proxy-url",
        "extensions",
    }
)
# Proxy schemes urllib3 tunnels through; kubectl also knows socks5, left to the client.
_PROXY_SCHEMES = ("http", "https")


@dataclass(frozen=True, slots=True)
class RawResponse:
    status: int
    data: bytes
    retry_after: str | None


def _b64(value: str, where: str, source: str) -> bytes:
    try:
        return base64.b64decode(value, validate=False)
    except (binascii.Error, ValueError):
        raise ConfigError(source, where, "is not valid base64") from None


def _file(path: str, base: Path | None) -> str:
    p = Path(os.path.expanduser(path))
    if not p.is_absolute() and base is not None:
        p = base / p
    return str(p)


class DirectTransport:
    """A urllib3 pool for one server, with the kubeconfig's TLS and credentials."""

    def __init__(
        self,
        server: str,
        context: ssl.SSLContext,
        token: str | None,
        token_file: str | None,
        pool_size: int,
        server_name: str | None,
        proxy: str | None = None,
    ) -> None:
        self.server = server.rstrip("/")
        self._token = token
        self._token_file = token_file
        # The proxy without credentials, for messages (None: direct connection).
        self.proxy = proxies.display(proxy) if proxy else None
        kwargs: dict[str, Any] = {}
        if server_name:
            kwargs["server_hostname"] = server_name
        common: dict[str, Any] = {
            "num_pools": 2,
            "maxsize": pool_size,
            "block": False,
            "ssl_context": context,
            "retries": False,
            **kwargs,
        }
        self._pool: urllib3.PoolManager
        if proxy:
            # An https:// server behind an http(s) proxy: urllib3 tunnels with CONNECT, and
            # TLS to the API server is still verified end to end with ``context``.
            self._pool = urllib3.ProxyManager(proxy, proxy_headers=_proxy_headers(proxy), **common)
        else:
            self._pool = urllib3.PoolManager(**common)

    @classmethod
    def create(
        cls,
        cluster: dict[str, Any],
        user: dict[str, Any],
        *,
        cluster_base: Path | None,
        user_base: Path | None,
        source: str,
        where: str,
        pool_size: int,
    ) -> DirectTransport | None:
        """A transport for this cluster and user, or None when the kubernetes client is needed."""
        if set(user) - _DIRECT_USER_KEYS or set(cluster) - _DIRECT_CLUSTER_KEYS:
            return None
        server = str(cluster.get("server") or "")
        if not server.startswith("https://"):
            return None  # plain http or odd schemes: leave them to the client
        proxy_url = cluster.get("proxy-url")
        if proxy_url is not None and not isinstance(proxy_url, str):
            raise ConfigError(source, f"{where}: proxy-url", "must be a string")
        proxy = proxies.proxy_for(server, proxy_url or None)
        if proxy is not None and urlsplit(proxy).scheme.lower() not in _PROXY_SCHEMES:
            return None  # socks5: the kubernetes client's job
        # A cluster CA is the only root trusted, as client-go does (RootCAs is the CA's pool
        # alone, k8s.io/client-go/transport/transport.go); the system's roots are loaded only
        # without one. Handing the CA to create_default_context also skips reading the
        # system bundle: 0.02 s and about a megabyte per context otherwise.
        if cluster.get("insecure-skip-tls-verify") is True:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        elif cluster.get("certificate-authority-data"):
            data = _b64(
                str(cluster["certificate-authority-data"]), "certificate-authority-data", source
            )
            try:
                ctx = ssl.create_default_context(cadata=data.decode("ascii", "replace"))
            except ssl.SSLError:
                raise ConfigError(
                    source, f"{where}: certificate-authority-data", "is not a PEM certificate"
                ) from None
        elif cluster.get("certificate-authority"):
            try:
                ctx = ssl.create_default_context(
                    cafile=_file(str(cluster["certificate-authority"]), cluster_base)
                )
            except (OSError, ssl.SSLError):
                raise ConfigError(
                    source,
                    f"{where}: certificate-authority",
                    "cannot be read as a PEM certificate file",
                ) from None
        else:
            ctx = ssl.create_default_context()
        cert = _pem(user, "client-certificate", user_base, source, where)
        key = _pem(user, "client-key", user_base, source, where)
        if (cert is None) != (key is None):
            raise ConfigError(source, where, "needs both a client certificate and a key")
        if cert is not None and key is not None:
            _load_client_pair(ctx, cert, key, source, where)
        token = user.get("token")
        token_file = user.get("tokenFile")
        return cls(
            server,
            ctx,
            str(token) if token else None,
            _file(str(token_file), user_base) if token_file else None,
            pool_size,
            str(cluster["tls-server-name"]) if cluster.get("tls-server-name") else None,
            proxy,
        )

    def _bearer(self) -> str | None:
        if self._token_file:
            # Re-read each time: projected service-account tokens rotate on disk.
            try:
                return Path(self._token_file).read_text().strip() or None
            except OSError:
                return self._token
        return self._token

    def send(
        self,
        method: str,
        path: str,
        body: bytes | None,
        headers: list[tuple[str, str]],
        timeout: float,
    ) -> RawResponse:
        hdrs = urllib3.HTTPHeaderDict(
            {
                "Accept": "application/json",
                "Content-Type": "application/json",
                "User-Agent": "skycheck",
            }
        )
        bearer = self._bearer()
        if bearer:
            hdrs["Authorization"] = f"Bearer {bearer}"
        for name, value in headers:
            hdrs.add(name, value)
        resp = self._pool.request(
            method,
            self.server + path,
            body=body,
            headers=hdrs,
            timeout=urllib3.Timeout(connect=timeout, read=timeout),
            redirect=False,
            preload_content=True,
        )
        return RawResponse(resp.status, resp.data, resp.headers.get("Retry-After"))

    def close(self) -> None:
        self._pool.clear()


def _proxy_headers(proxy: str) -> dict[str, str]:
    """Basic auth for a proxy URL with user information, as Go's transport sends it."""
    parts = urlsplit(proxy)
    if parts.username is None:
        return {}
    password = unquote(parts.password or "")
    register([password] if len(password) >= 4 else [])
    auth = f"{unquote(parts.username)}:{password}"
    return dict(urllib3.make_headers(proxy_basic_auth=auth))


def _pem(
    user: dict[str, Any], key: str, base: Path | None, source: str, where: str
) -> bytes | None:
    if user.get(f"{key}-data"):
        return _b64(str(user[f"{key}-data"]), f"{where}: {key}-data", source)
    if user.get(key):
        try:
            return Path(_file(str(user[key]), base)).read_bytes()
        except OSError:
            raise ConfigError(source, f"{where}: {key}", "cannot be read") from None
    return None


def _load_client_pair(
    ctx: ssl.SSLContext, cert: bytes, key: bytes, source: str, where: str
) -> None:
    """ssl loads a client certificate only from files: write both to a private temp
    directory, load them, and remove them at once."""
    with tempfile.TemporaryDirectory(prefix="skycheck-") as tmp:
        cert_path, key_path = Path(tmp) / "client.crt", Path(tmp) / "client.key"
        for path, data in ((cert_path, cert), (key_path, key)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
        try:
            ctx.load_cert_chain(str(cert_path), str(key_path))
        except ssl.SSLError:
            raise ConfigError(
                source, where, "client certificate and key do not load as a PEM pair"
            ) from None
        finally:
            for path in (cert_path, key_path):
                with contextlib.suppress(OSError):
                    path.unlink()
