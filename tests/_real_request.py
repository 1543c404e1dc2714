"""The real HTTP request behind a check, made as an identity: the apiserver's own answer.

A check (verb, group, resource, subresource, namespace, name) is turned into the request a
client such as SkyPilot sends for it: reads as GET (``watch`` with ``?watch=1``), writes with
``?dryRun=All`` so nothing is stored, subresources on a made-up object, a delete-collection
with a label selector that matches nothing. The apiserver authorizes the request before it
looks anything up, so an allowed request answers 404/409/422/201/200 and a denied one 403 with
the authorization filter's own message (``User "x" cannot get resource "pods" in API group ""
in the namespace "n"``; staging/src/k8s.io/apiserver/pkg/endpoints/handlers/responsewriters/
errors.go, ``forbiddenMessage``). Any other 403 (an admission plugin, the RBAC escalation
check) means authorization passed. That message also says in which namespace the apiserver
authorized the request, which is how the namespace-by-name rule shows itself.

``bind``, ``escalate`` and ``impersonate`` are no HTTP verbs of their own: they are checked
inside other requests, and :func:`http_request` returns None for them.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import re
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

# A name no rule of the tests' worlds lists in resourceNames: the request stands for "an
# object SkyPilot names at run time", as a check without a name does.
PROBE_NAME = "skycheck-probe-x"
_NOTHING = "skycheck.test/probe-selects-nothing"
_DENIED = re.compile(
    r'User "(?P<user>.*)" cannot (?P<verb>\S+) resource "(?P<resource>[^"]*)" in API group '
    r'"(?P<group>[^"]*)" (?:in the namespace "(?P<namespace>[^"]*)"|at the cluster scope)'
)
# The request verbs RequestInfo derives from an HTTP method (requestinfo.go).
_METHOD = {
    "get": "GET",
    "list": "GET",
    "watch": "GET",
    "create": "POST",
    "update": "PUT",
    "patch": "PATCH",
    "delete": "DELETE",
    "deletecollection": "DELETE",
}
# Group versions of the checks' API groups (every one is served at v1 by Kubernetes 1.37).
VERSIONS = {"": "v1"}


@dataclass(frozen=True)
class HttpRequest:
    method: str
    path: str  # with its query
    body: bytes | None
    content_type: str

    def describe(self) -> str:
        return f"{self.method} {self.path}"


@dataclass(frozen=True)
class Answer:
    status: int
    denied: bool  # a 403 from the authorization filter
    namespace: str | None  # where the apiserver said it authorized a denied request
    message: str


def http_request(
    verb: str, group: str, resource: str, subresource: str, namespace: str, name: str
) -> HttpRequest | None:
    """The request for one check, or None for the verbs that have none of their own."""
    method = _METHOD.get(verb)
    if method is None:
        return None
    base = "/api/v1" if group == "" else f"/apis/{group}/{VERSIONS.get(group, 'v1')}"
    path = base + (f"/namespaces/{namespace}" if namespace else "") + f"/{resource}"
    collection = verb in ("list", "watch", "deletecollection") or (
        verb == "create" and not subresource
    )
    if not collection:
        path += "/" + quote(name or PROBE_NAME, safe="")
        if subresource:
            path += f"/{subresource}"
    elif subresource:  # a subresource of a collection: as named, on the probe object
        path += f"/{quote(name or PROBE_NAME, safe='')}/{subresource}"
    query: list[str] = []
    if verb == "watch":
        query.append("watch=1")
    if verb in ("create", "update", "patch", "delete", "deletecollection"):
        query.append("dryRun=All")
    if verb == "deletecollection":
        query.append("labelSelector=" + quote(f"{_NOTHING}=yes", safe=""))
    if subresource == "exec" and verb in ("create", "get"):
        query.append("command=true&stdout=true")
    if query:
        path += "?" + "&".join(query)
    body: bytes | None = None
    content_type = "application/json"
    if verb == "patch":
        body, content_type = b"{}", "application/merge-patch+json"
    elif verb in ("create", "update"):
        # No rules, no roleRef, no spec: the object is rejected (or dry-run stored) only
        # after authorization, and an empty Role needs no escalate.
        body = json.dumps({"metadata": {"name": name or PROBE_NAME}}).encode()
    return HttpRequest(method, path, body, content_type)


class Requester:
    """HTTPS to the apiserver with one identity's credentials (a token, or admin impersonating)."""

    def __init__(self, server: str, ca_file: str, token: str) -> None:
        url = urlsplit(server)
        self._host, self._port = url.hostname or "127.0.0.1", url.port or 443
        self._ssl = ssl.create_default_context(cafile=ca_file)
        self._token = token

    def send(
        self,
        request: HttpRequest,
        *,
        impersonate_user: str | None = None,
        impersonate_groups: Sequence[str] = (),
    ) -> Answer:
        headers: dict[str, str] = {
            "Authorization": f"Bearer {self._token}",
            "Accept": "application/json",
        }
        if request.body is not None:
            headers["Content-Type"] = request.content_type
        conn = http.client.HTTPSConnection(self._host, self._port, context=self._ssl, timeout=30)
        try:
            conn.putrequest(request.method, request.path)
            for key, value in headers.items():
                conn.putheader(key, value)
            if impersonate_user is not None:
                conn.putheader("Impersonate-User", impersonate_user)
                for group in impersonate_groups:  # repeated, as client-go sends them
                    conn.putheader("Impersonate-Group", group)
            if request.body is not None:
                conn.putheader("Content-Length", str(len(request.body)))
            conn.endheaders(request.body)
            resp = conn.getresponse()
            # A watch that was allowed streams until its timeout: the status line is the answer.
            text = "" if resp.status == 200 else resp.read(65536).decode(errors="replace")
        finally:
            conn.close()
        return classify(resp.status, text)


def classify(status: int, text: str) -> Answer:
    """Denied only when the authorization filter said so; every other answer passed it."""
    message = text
    with contextlib.suppress(ValueError, AttributeError):  # not a Status: keep the text
        message = str(json.loads(text).get("message", text))
    match = _DENIED.search(message) if status == 403 else None
    if match is None:
        return Answer(status, False, None, message[:300])
    return Answer(status, True, match.group("namespace") or "", message[:300])


def answers(
    requester: Requester,
    checks: Sequence[Mapping[str, str]],
    *,
    impersonate_user: str | None = None,
    impersonate_groups: Sequence[str] = (),
) -> dict[int, Answer]:
    """Index in ``checks`` -> the real request's answer, for the checks that have a request."""
    out: dict[int, Answer] = {}
    for i, c in enumerate(checks):
        req = http_request(
            c["verb"], c["group"], c["resource"], c["subresource"], c["namespace"], c["name"]
        )
        if req is not None:
            out[i] = requester.send(
                req, impersonate_user=impersonate_user, impersonate_groups=impersonate_groups
            )
    return out
