"""The version of the SkyPilot API server a client is pointed at, from its health endpoint.

SkyPilot's client talks to the API server named by ``$SKYPILOT_API_SERVER_ENDPOINT``, else
``api_server.endpoint`` in the SkyPilot config (get_server_url in sky/server/common.py);
with a remote API server, that server's SkyPilot is the one making the Kubernetes calls.
``GET /api/health`` answers with its ``version`` (sky/server/server.py, health). A server
with authentication answers an anonymous caller without it: then, as when the server does
not answer in time, the version is unknown here and the caller falls back.

No credentials are sent: a user name and password in the endpoint URL are dropped, and
never shown in messages.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from urllib.parse import urlsplit, urlunsplit

ENV_ENDPOINT = "SKYPILOT_API_SERVER_ENDPOINT"
TIMEOUT = 2.0  # seconds; a server that takes longer is treated as not answering
_MAX_BODY = 1 << 16


def endpoint(configured: str | None, env: Mapping[str, str]) -> str | None:
    """The endpoint SkyPilot's client would use: the environment wins over the config."""
    value = env.get(ENV_ENDPOINT) or configured
    return value.strip() if value and value.strip() else None


def _without_userinfo(url: str) -> str | None:
    """``url`` without a user name or password, or None when it is not http(s)."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not host:
        return None
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc += f":{port}"
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


def display(url: str) -> str:
    """The endpoint for messages: never its credentials."""
    return _without_userinfo(url) or "(an endpoint that is not an http or https URL)"


def server_version(url: str, timeout: float = TIMEOUT) -> str | None:
    """The ``version`` the API server's ``/api/health`` reports, or None if it says none."""
    base = _without_userinfo(url)
    if base is None:
        return None
    import http.client
    import urllib.request  # only on this path: it costs an offline check's start-up time

    request = urllib.request.Request(base + "/api/health", headers={"Accept": "application/json"})
    try:
        # http and https only (checked above): no file: or ftp: URLs from a config file
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read(_MAX_BODY)
    except (OSError, ValueError, http.client.HTTPException):
        return None
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    version = doc.get("version") if isinstance(doc, dict) else None
    return version.strip() if isinstance(version, str) and version.strip() else None
