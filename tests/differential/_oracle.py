"""The real kube-apiserver as an oracle for skycheck's offline RBAC evaluator.

:class:`Oracle` applies a world of RBAC objects to the test control plane, waits until the
cluster has caught up with it (aggregation by kube-controller-manager, then the RBAC
authorizer's informer caches), asks SubjectAccessReviews concurrently over keep-alive HTTPS
connections, and deletes the world again. :meth:`Oracle.offline_state` builds the offline
evaluator from the SAME objects, the shipped bootstrap policy, and whatever else the cluster
holds (other tests' leftovers), so that both sides judge exactly the same RBAC.

Waiting for the caches (the reason a review may briefly say "no" right after a write):
informers deliver each resource type's events in order. After the world (and the previous
world's deletion) is written, a sentinel ClusterRole + ClusterRoleBinding and a sentinel Role +
RoleBinding are created, each granting a unique user a unique resource; once reviews say the
sentinel user is allowed both ways, the authorizer has seen every earlier write of all four
kinds. Aggregation is waited for before the sentinels: the aggregated ClusterRoles are polled
until their rules equal the offline evaluator's.
"""

from __future__ import annotations

import http.client
import json
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from skycheck import rbac
from tests.cluster.controlplane import ControlPlane, ControlPlaneError

RBAC_API = "/apis/rbac.authorization.k8s.io/v1"
SAR_PATH = "/apis/authorization.k8s.io/v1/subjectaccessreviews"
PLURAL = {
    "Role": "roles",
    "ClusterRole": "clusterroles",
    "RoleBinding": "rolebindings",
    "ClusterRoleBinding": "clusterrolebindings",
}
SENTINEL_GROUP = "sentinel.skycheck.test"
# The aggregated ClusterRoles of the bootstrap policy (a world may feed them).
BOOTSTRAP_AGGREGATED = ("admin", "edit", "view")
WORKERS = 8


@dataclass(frozen=True)
class Query:
    """One access review: who, and a resource or a non-resource request."""

    user: str
    groups: tuple[str, ...]
    verb: str
    namespace: str = ""
    group: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""
    path: str = ""  # set: a non-resource request

    def spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = {"user": self.user, "groups": list(self.groups)}
        if self.path:
            spec["nonResourceAttributes"] = {"path": self.path, "verb": self.verb}
        else:
            spec["resourceAttributes"] = {
                "namespace": self.namespace,
                "verb": self.verb,
                "group": self.group,
                "resource": self.resource,
                "subresource": self.subresource,
                "name": self.name,
            }
        return spec

    def offline(self, state: rbac.RbacState) -> rbac.AuthzResult:
        if self.path:
            return state.authorize_path(self.user, self.groups, self.verb, self.path)
        return state.authorize(
            self.user,
            self.groups,
            self.verb,
            self.group,
            self.resource,
            self.subresource,
            self.namespace,
            self.name,
        )

    def describe(self) -> str:
        who = f"{self.user} {list(self.groups)}"
        if self.path:
            return f"{who}: {self.verb} {self.path}"
        res = self.resource + (f"/{self.subresource}" if self.subresource else "")
        res += f".{self.group}" if self.group else ""
        name = f" name={self.name!r}" if self.name else ""
        where = f"in {self.namespace}" if self.namespace else "cluster-wide"
        return f"{who}: {self.verb} {res}{name} {where}"


@dataclass
class Stats:
    examples: int = 0
    objects: int = 0
    queries: int = 0
    allowed: int = 0
    aggregated_examples: int = 0
    disagreements: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def line(self) -> str:
        rate = self.queries / self.seconds if self.seconds else 0.0
        return (
            f"{self.examples} worlds, {self.objects} RBAC objects, {self.queries} reviews "
            f"({self.allowed} allowed, {self.queries - self.allowed} denied), "
            f"{self.aggregated_examples} worlds with aggregation; "
            f"{self.seconds:.1f} s ({rate:.0f} reviews/s)"
        )


def api_path(obj: dict[str, Any], *, named: bool) -> str:
    kind = obj["kind"]
    meta = obj["metadata"]
    base = RBAC_API
    if kind in rbac.NAMESPACED_KINDS:
        base += f"/namespaces/{meta['namespace']}"
    base += f"/{PLURAL[kind]}"
    return f"{base}/{meta['name']}" if named else base


class Oracle:
    """Keep-alive HTTPS to the control plane as its admin (``system:masters``)."""

    def __init__(self, cluster: ControlPlane) -> None:
        self.cluster = cluster
        url = urlsplit(cluster.server)
        self._host, self._port = url.hostname or "127.0.0.1", url.port or 443
        self._ssl = ssl.create_default_context(cafile=str(cluster.ca_cert))
        self._headers = {
            "Authorization": f"Bearer {cluster.admin_token}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        }
        self._local = threading.local()
        self._pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="oracle")

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    # -- HTTP ----------------------------------------------------------------------------

    def call(
        self, method: str, path: str, body: object = None, ok: Sequence[int] = (200, 201)
    ) -> dict[str, Any]:
        data = None if body is None else json.dumps(body)
        for attempt in range(3):
            conn: http.client.HTTPSConnection | None = getattr(self._local, "conn", None)
            if conn is None:
                conn = http.client.HTTPSConnection(
                    self._host, self._port, context=self._ssl, timeout=30
                )
                self._local.conn = conn
            try:
                conn.request(method, path, data, self._headers)
                resp = conn.getresponse()
                text = resp.read().decode()
            except (OSError, http.client.HTTPException):
                conn.close()
                self._local.conn = None
                if attempt == 2:
                    raise
                continue
            if resp.status not in ok:
                raise ControlPlaneError(f"{method} {path}: HTTP {resp.status}: {text[:600]}")
            result: dict[str, Any] = json.loads(text) if text else {}
            return result
        raise AssertionError("unreachable")

    def map(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> list[Any]:
        return list(self._pool.map(fn, items))

    # -- objects -------------------------------------------------------------------------

    def create(self, objects: Sequence[dict[str, Any]]) -> None:
        self.map(lambda o: self.call("POST", api_path(o, named=False), o, ok=(201,)), objects)

    def delete(self, objects: Sequence[dict[str, Any]]) -> None:
        self.map(
            lambda o: self.call("DELETE", api_path(o, named=True), ok=(200, 202, 404)), objects
        )

    def live_objects(self, namespaces: Iterable[str]) -> list[dict[str, Any]]:
        """Every ClusterRole and ClusterRoleBinding, and the Roles and RoleBindings of
        ``namespaces`` (the only ones that can matter to reviews in those namespaces)."""
        paths = [(f"{RBAC_API}/clusterroles", "ClusterRole")]
        paths.append((f"{RBAC_API}/clusterrolebindings", "ClusterRoleBinding"))
        for ns in namespaces:
            paths.append((f"{RBAC_API}/namespaces/{ns}/roles", "Role"))
            paths.append((f"{RBAC_API}/namespaces/{ns}/rolebindings", "RoleBinding"))
        out: list[dict[str, Any]] = []
        listings = self.map(lambda p: self.call("GET", p[0]), paths)
        for (_, kind), listing in zip(paths, listings, strict=True):
            for item in listing.get("items") or ():
                out.append(strip_server_fields({**item, "kind": kind}))
        return out

    # -- reviews -------------------------------------------------------------------------

    def review(self, query: Query) -> dict[str, Any]:
        body = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": query.spec(),
        }
        status: dict[str, Any] = self.call("POST", SAR_PATH, body, ok=(201,)).get("status", {})
        return status

    def reviews(self, queries: Sequence[Query]) -> list[dict[str, Any]]:
        return self.map(self.review, queries)

    # -- waiting for the cluster ---------------------------------------------------------

    def settle_aggregation(
        self, expected: dict[str, frozenset[rbac.PolicyRule]], timeout: float = 30.0
    ) -> float:
        """Poll the aggregated ClusterRoles until their rules are ``expected``; seconds waited."""
        start = time.monotonic()
        names = sorted(expected)
        while True:
            found = self.map(lambda n: self.call("GET", f"{RBAC_API}/clusterroles/{n}"), names)
            wrong = []
            for name, obj in zip(names, found, strict=True):
                live = rbac.parse_object({**strip_server_fields(obj), "kind": "ClusterRole"})
                assert isinstance(live, rbac.ClusterRole)
                if frozenset(live.rules) != expected[name]:
                    wrong.append((name, frozenset(live.rules)))
            if not wrong:
                return time.monotonic() - start
            if time.monotonic() - start > timeout:
                lines = [
                    f"{n}: live has {len(live)} rules, evaluator {len(expected[n])}; only live: "
                    f"{sorted(map(repr, live - expected[n]))[:3]}; only evaluator: "
                    f"{sorted(map(repr, expected[n] - live))[:3]}"
                    for n, live in wrong
                ]
                raise AssertionError(
                    "aggregation never matched the evaluator's:\n  " + "\n  ".join(lines)
                )
            time.sleep(0.05)

    def sentinels(self, prefix: str, namespace: str) -> list[dict[str, Any]]:
        user = f"{prefix}sentinel"
        name = f"{prefix}sentinel"

        def rule(resource: str) -> dict[str, Any]:
            return {"apiGroups": [SENTINEL_GROUP], "resources": [resource], "verbs": ["get"]}

        subject = [{"kind": "User", "name": user, "apiGroup": rbac.RBAC_GROUP}]
        meta_ns = {"name": name, "namespace": namespace}
        return [
            {**_head("ClusterRole"), "metadata": {"name": name}, "rules": [rule("csentinels")]},
            {**_head("Role"), "metadata": meta_ns, "rules": [rule("rsentinels")]},
            {
                **_head("ClusterRoleBinding"),
                "metadata": {"name": name},
                "subjects": subject,
                "roleRef": {"apiGroup": rbac.RBAC_GROUP, "kind": "ClusterRole", "name": name},
            },
            {
                **_head("RoleBinding"),
                "metadata": meta_ns,
                "subjects": subject,
                "roleRef": {"apiGroup": rbac.RBAC_GROUP, "kind": "Role", "name": name},
            },
        ]

    def sync(self, sentinels: Sequence[dict[str, Any]], timeout: float = 30.0) -> float:
        """Create the sentinels; wait until the authorizer sees them (and all earlier writes)."""
        start = time.monotonic()
        self.create(sentinels)
        binding = next(s for s in sentinels if s["kind"] == "RoleBinding")
        user, namespace = binding["subjects"][0]["name"], binding["metadata"]["namespace"]
        probes = [
            Query(user, (), "get", "", SENTINEL_GROUP, "csentinels"),
            Query(user, (), "get", namespace, SENTINEL_GROUP, "rsentinels"),
        ]
        while True:
            if all(r.get("allowed") for r in self.reviews(probes)):
                return time.monotonic() - start
            if time.monotonic() - start > timeout:
                raise AssertionError("the RBAC authorizer never saw the sentinel objects")
            time.sleep(0.02)

    # -- the offline side ----------------------------------------------------------------

    @staticmethod
    def offline_state(
        world: Sequence[dict[str, Any]], foreign: Sequence[dict[str, Any]]
    ) -> rbac.RbacState:
        """Bootstrap policy (shipped), then the cluster's other objects, then the world."""
        objects = [rbac.parse_object(o) for o in (*foreign, *world)]
        return rbac.RbacState.with_bootstrap(objects)

    @staticmethod
    def aggregation_expectations(
        state: rbac.RbacState, world: Sequence[dict[str, Any]]
    ) -> dict[str, frozenset[rbac.PolicyRule]]:
        names = {
            o["metadata"]["name"]
            for o in world
            if o["kind"] == "ClusterRole" and o.get("aggregationRule") is not None
        }
        names.update(BOOTSTRAP_AGGREGATED)
        out: dict[str, frozenset[rbac.PolicyRule]] = {}
        for name in names:
            rules = state.cluster_role_rules(name)
            assert rules is not None, name
            out[name] = frozenset(rules)
        return out


def _head(kind: str) -> dict[str, str]:
    return {"apiVersion": rbac.RBAC_API_VERSION, "kind": kind}


_SERVER_META = (
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "managedFields",
    "generation",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "finalizers",
    "ownerReferences",
)


def strip_server_fields(obj: dict[str, Any]) -> dict[str, Any]:
    """An object as read from the API, reduced to what a manifest would hold."""
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in _SERVER_META}
    out = {k: v for k, v in obj.items() if k not in ("metadata", "status")}
    out["metadata"] = meta
    out.setdefault("apiVersion", rbac.RBAC_API_VERSION)
    return out
