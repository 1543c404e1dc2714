"""A namespace read by name is authorized in that namespace: the real request decides.

``GET /api/v1/namespaces/skypilot-system`` is authorized with namespace ``skypilot-system``
(RequestInfo takes the name after ``namespaces`` as the request's namespace), so a
RoleBinding *in skypilot-system* to a role granting ``get namespaces`` lets the identity read
it, although ``kubectl auth can-i get namespaces/skypilot-system`` (asked cluster-wide) says
no. skycheck must answer as the real request does, live and offline, both ways: granted by
such a RoleBinding, and not granted by the same RoleBinding in another namespace.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from skycheck.cli import run
from skycheck.manifests import load_manifests
from skycheck.models import Decision, Requirement, Subject
from skycheck.review.live import resource_attributes
from skycheck.review.offline import OfflineReviewer
from tests._real_request import Requester, http_request
from tests.cluster.controlplane import ControlPlane

pytestmark = pytest.mark.cluster

CHECK = "object-store-mounting.namespaces.get"  # get namespaces skypilot-system


def _manifest(ns: str, binding_ns: str, verbs: list[str]) -> str:
    """sky-sa in ``ns`` bound, by a RoleBinding in ``binding_ns``, to a Role granting
    ``verbs`` on namespaces there (SkyPilot's own kubeconfig script grants ``*`` on ``*``)."""
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": f"nsread-{ns}", "namespace": binding_ns},
        "rules": [{"apiGroups": [""], "resources": ["namespaces"], "verbs": verbs}],
    }
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": f"nsread-{ns}", "namespace": binding_ns},
        "subjects": [{"kind": "ServiceAccount", "name": "sky-sa", "namespace": ns}],
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": f"nsread-{ns}",
        },
    }
    return "\n---\n".join(json.dumps(o) for o in (role, binding)) + "\n"


def _report(args: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    capsys.readouterr()
    run([*args, "-o", "json"])
    report: dict[str, Any] = json.loads(capsys.readouterr().out)
    return report


def _decision(report: dict[str, Any], check_id: str) -> str:
    found = [c["decision"] for c in report["checks"] if c["id"] == check_id]
    assert len(found) == 1, [c["id"] for c in report["checks"]]
    return found[0]


def _real_get(cluster: ControlPlane, token: str, name: str) -> int:
    request = http_request("get", "", "namespaces", "", "", name)
    assert request is not None and request.path == f"/api/v1/namespaces/{name}"
    return Requester(cluster.server, str(cluster.ca_cert), token).send(request).status


@pytest.mark.parametrize("where", ["skypilot-system", "own-namespace"])
def test_a_namespace_read_by_name_is_decided_as_the_real_get(
    cluster: ControlPlane,
    system_namespaces: None,
    ns: str,
    where: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    binding_ns = "skypilot-system" if where == "skypilot-system" else ns
    manifest = _manifest(ns, binding_ns, ["get"])
    cluster.create_service_account(ns, "sky-sa")
    cluster.apply(manifest)
    try:
        token = cluster.token(ns, "sky-sa")
        expected = "allowed" if where == "skypilot-system" else "denied"
        status = cluster_wait(lambda: _real_get(cluster, token, "skypilot-system"), expected)
        assert status == (200 if expected == "allowed" else 403)
        # kubectl auth can-i asks cluster-wide, and says no either way: the blind spot.
        assert not cluster.can_i(
            "get", "namespaces/skypilot-system", as_user=f"system:serviceaccount:{ns}:sky-sa"
        )
        features = ["--sa", "sky-sa", "-n", ns, "-f", "object-store-mounting"]
        live = _report(["--kubeconfig", str(cluster.admin_kubeconfig), *features], capsys)
        (tmp_path / "rbac.yaml").write_text(manifest)
        offline = _report(["--manifests", str(tmp_path / "rbac.yaml"), *features], capsys)
        assert _decision(live, CHECK) == expected
        assert _decision(offline, CHECK) == expected
    finally:
        cluster.delete(manifest)


def cluster_wait(probe: Callable[[], int], expected: str, timeout: float = 10.0) -> int:
    """The real answer once the RBAC cache has caught up with the write (it lags a moment)."""
    deadline = time.monotonic() + timeout
    while True:
        status = probe()
        if (status != 403) == (expected == "allowed") or time.monotonic() > deadline:
            return status
        time.sleep(0.1)


def _requirement(verb: str, name: str) -> Requirement:
    return Requirement(
        id=f"t.namespaces.{verb}",
        rule_id="t.namespaces",
        feature="t",
        required=True,
        verb=verb,
        group="",
        resource="namespaces",
        subresource="",
        namespace="",
        name=name,
        why="test",
        breaks="test",
        source="code, test",
    )


# (verb, name of the namespace or "" for the collection): get, update, patch and delete
# name the namespace in their path; create and list do not, and stay cluster-wide.
VERBS = [("get", True), ("update", True), ("patch", True), ("delete", True)]
COLLECTION = [("create", False), ("list", False)]


def test_every_verb_on_a_namespace_by_name_is_authorized_in_it(
    cluster: ControlPlane, ns: str, tmp_path: Path
) -> None:
    """A Role in namespace N granting every verb on namespaces: the real requests (writes
    with dryRun=All), SubjectAccessReviews as the live reviewer asks them, and the offline
    reviewer agree, verb by verb; reading another namespace by name stays denied."""
    manifest = _manifest(ns, ns, ["get", "update", "patch", "delete", "create", "list"])
    cluster.create_service_account(ns, "sky-sa")
    cluster.apply(manifest)
    try:
        requester = Requester(cluster.server, str(cluster.ca_cert), cluster.token(ns, "sky-sa"))
        own = http_request("get", "", "namespaces", "", "", ns)
        assert own is not None
        cluster_wait(lambda: requester.send(own).status, "allowed")
        (tmp_path / "rbac.yaml").write_text(manifest)
        offline = OfflineReviewer.from_manifests(load_manifests([str(tmp_path / "rbac.yaml")]))
        subject = Subject.service_account("sky-sa", ns)
        cases = [(v, ns, by_name) for v, by_name in VERBS]
        cases += [(v, "", False) for v, _ in COLLECTION]
        cases += [("get", "default", False)]  # another namespace, by name: not this Role's
        for verb, name, expected in cases:
            request = http_request(verb, "", "namespaces", "", "", name)
            assert request is not None
            answer = requester.send(request)
            req = _requirement(verb, name)
            review = cluster.request(
                "POST",
                "/apis/authorization.k8s.io/v1/subjectaccessreviews",
                {
                    "kind": "SubjectAccessReview",
                    "apiVersion": "authorization.k8s.io/v1",
                    "spec": {
                        "resourceAttributes": resource_attributes(req),
                        "user": subject.username,
                        "groups": list(subject.groups),
                    },
                },
            )
            finding = offline.review(subject, [req]).findings[0]
            assert answer.denied is not expected, (verb, name, answer)
            assert bool(review["status"].get("allowed")) is expected, (verb, name, review)
            assert (finding.decision is Decision.ALLOWED) is expected, (verb, name, finding)
            if answer.denied:  # the apiserver names where it authorized the request
                assert answer.namespace == (name if verb != "list" and name else ""), answer
    finally:
        cluster.delete(manifest)
