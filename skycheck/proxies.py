"""Which HTTP proxy a request to the API server goes through, decided as kubectl decides it.

kubectl takes the cluster's ``proxy-url`` when the kubeconfig sets one (for every
server, loopback included: k8s.io/client-go/rest/transport.go uses
``http.ProxyURL``), and otherwise the environment through Go's
``http.ProxyFromEnvironment``, whose rules live in
golang.org/x/net/http/httpproxy/proxy.go and are copied here:

- an ``https://`` server uses ``HTTPS_PROXY`` (else ``https_proxy``), never ``HTTP_PROXY``;
- ``localhost`` and loopback IP literals never use the environment's proxy;
- ``NO_PROXY`` (else ``no_proxy``) is a comma-separated list of ``*`` (no proxy at all),
  CIDRs (``10.0.0.0/8``, matching IP literals), IPs with an optional port, and domains
  with an optional port: ``example.com`` matches it and its subdomains, ``.example.com``
  and ``*.example.com`` only its subdomains;
- a proxy written without a scheme is ``http://``.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True, slots=True)
class _Entry:
    """One NO_PROXY entry."""

    kind: str  # "all", "cidr", "ip", "domain"
    value: str = ""
    port: str = ""
    match_host: bool = False  # a domain written without a leading dot also matches itself


def _env(environ: Mapping[str, str], *names: str) -> str:
    for name in names:
        value = environ.get(name)
        if value:
            return value
    return ""


def normalise_proxy(proxy: str) -> str:
    """``host:port`` means ``http://host:port`` (httpproxy's parseProxy)."""
    parts = urlsplit(proxy)
    if parts.scheme and parts.netloc:
        return proxy
    return f"http://{proxy}"


def _split_host_port(text: str) -> tuple[str, str] | None:
    """Go's net.SplitHostPort, for NO_PROXY entries: None when there is no port."""
    if text.startswith("["):
        end = text.find("]")
        if end > 0 and text[end + 1 : end + 2] == ":":
            return text[1:end], text[end + 2 :]
        return None
    if text.count(":") == 1:
        host, _, port = text.partition(":")
        return host, port
    return None


def _parse_no_proxy(text: str) -> list[_Entry]:
    entries: list[_Entry] = []
    for raw in text.split(","):
        item = raw.strip().lower()
        if not item:
            continue
        if item == "*":
            return [_Entry("all")]
        if "/" in item:
            try:
                entries.append(_Entry("cidr", str(ipaddress.ip_network(item, strict=False))))
                continue
            except ValueError:
                pass  # not a CIDR: read on as a host, as httpproxy does
        split = _split_host_port(item)
        host, port = split if split is not None else (item, "")
        if not host:
            continue
        try:
            entries.append(_Entry("ip", str(ipaddress.ip_address(host)), port))
            continue
        except ValueError:
            pass
        if host.startswith("*."):
            host = host[1:]
        match_host = not host.startswith(".")
        suffix = host if host.startswith(".") else f".{host}"
        entries.append(_Entry("domain", suffix, port, match_host))
    return entries


def _excluded(host: str, port: str, entries: list[_Entry]) -> bool:
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    for entry in entries:
        if entry.kind == "all":
            return True
        if entry.kind == "cidr" and ip is not None:
            if ip in ipaddress.ip_network(entry.value):
                return True
        elif entry.kind == "ip" and ip is not None:
            if ip == ipaddress.ip_address(entry.value) and entry.port in ("", port):
                return True
        elif entry.kind == "domain" and ip is None:  # a domain never matches an IP literal
            hit = host.endswith(entry.value) or (entry.match_host and host == entry.value[1:])
            if hit and entry.port in ("", port):
                return True
    return False


def proxy_for(
    server: str, proxy_url: str | None, environ: Mapping[str, str] | None = None
) -> str | None:
    """The proxy for requests to ``server``, or None to connect directly."""
    if proxy_url:
        return normalise_proxy(proxy_url)
    env = os.environ if environ is None else environ
    parts = urlsplit(server)
    scheme = parts.scheme.lower()
    proxy = _env(env, "HTTPS_PROXY", "https_proxy") if scheme == "https" else ""
    if scheme == "http":
        proxy = _env(env, "HTTP_PROXY", "http_proxy")
    if not proxy:
        return None
    try:
        port = str(parts.port or (443 if scheme == "https" else 80))
    except ValueError:
        return None
    if _raw_host(parts.netloc) == "localhost":
        return None  # case-sensitive in httpproxy: LOCALHOST goes through the proxy
    host = (parts.hostname or "").lower()
    try:
        if ipaddress.ip_address(host).is_loopback:
            return None
    except ValueError:
        pass
    if _excluded(host, port, _parse_no_proxy(_env(env, "NO_PROXY", "no_proxy"))):
        return None
    return normalise_proxy(proxy)


def _raw_host(netloc: str) -> str:
    """The host as written (urlsplit's ``hostname`` lowercases it)."""
    hostport = netloc.rpartition("@")[2]
    if hostport.startswith("["):
        return hostport[1 : hostport.find("]")]
    return hostport.partition(":")[0]


def display(proxy: str) -> str:
    """The proxy URL without its user and password, for messages."""
    parts = urlsplit(proxy)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    return f"{parts.scheme}://{host}{port}"
