"""requestinfo: the namespace the API server authorizes a request in."""

from __future__ import annotations

import pytest

from skycheck import rbac
from skycheck.models import Decision, Requirement, Subject
from skycheck.requestinfo import request_namespace
from skycheck.review.live import resource_attributes
from skycheck.review.offline import OfflineReviewer


@pytest.mark.parametrize(
    ("verb", "group", "resource", "subresource", "namespace", "name", "expected"),
    [
        # /api/v1/namespaces/X[/status|/finalize]: the name is the request's namespace
        ("get", "", "namespaces", "", "", "skypilot-system", "skypilot-system"),
        ("update", "", "namespaces", "", "", "x", "x"),
        ("patch", "", "namespaces", "status", "", "x", "x"),
        ("update", "", "namespaces", "finalize", "", "x", "x"),
        ("delete", "", "namespaces", "", "", "x", "x"),
        # the collection: no name in the path, cluster-wide
        ("create", "", "namespaces", "", "", "", ""),
        ("list", "", "namespaces", "", "", "", ""),
        ("watch", "", "namespaces", "", "", "x", ""),  # ?fieldSelector=metadata.name=x
        ("list", "", "namespaces", "", "", "x", ""),
        ("get", "", "namespaces", "", "", "", ""),
        # only the core group's namespaces, and only their own subresources
        ("get", "example.com", "namespaces", "", "", "x", ""),
        ("get", "", "namespaces", "pods", "", "x", ""),
        # everything else keeps its namespace
        ("get", "", "pods", "", "default", "p", "default"),
        ("create", "", "pods", "exec", "default", "", "default"),
        ("get", "", "nodes", "", "", "n", ""),
    ],
)
def test_request_namespace(
    verb: str,
    group: str,
    resource: str,
    subresource: str,
    namespace: str,
    name: str,
    expected: str,
) -> None:
    assert request_namespace(verb, group, resource, subresource, namespace, name) == expected


def test_a_review_of_a_namespace_by_name_is_sent_in_that_namespace() -> None:
    req = Requirement(
        id="f.namespaces.get",
        rule_id="f.namespaces",
        feature="f",
        required=True,
        verb="get",
        group="",
        resource="namespaces",
        subresource="",
        namespace="",  # as the catalogue states it: a cluster-scoped object
        name="skypilot-system",
        why="w",
        breaks="b",
        source="code, test",
    )
    assert req.namespace == "" and req.request_namespace == "skypilot-system"
    assert resource_attributes(req) == {
        "verb": "get",
        "group": "",
        "resource": "namespaces",
        "name": "skypilot-system",
        "namespace": "skypilot-system",
    }


def _state_with_role_in(namespace: str) -> OfflineReviewer:
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "r", "namespace": namespace},
        "rules": [{"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get"]}],
    }
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "r", "namespace": namespace},
        "subjects": [{"kind": "ServiceAccount", "name": "sky-sa", "namespace": "default"}],
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"},
    }
    objects = [rbac.parse_object(role), rbac.parse_object(binding)]
    return OfflineReviewer(rbac.RbacState.with_bootstrap(objects))


@pytest.mark.parametrize(("where", "allowed"), [("skypilot-system", True), ("default", False)])
def test_offline_reads_a_namespace_by_name_in_that_namespace(where: str, allowed: bool) -> None:
    req = Requirement(
        id="f.namespaces.get",
        rule_id="f.namespaces",
        feature="f",
        required=True,
        verb="get",
        group="",
        resource="namespaces",
        subresource="",
        namespace="",
        name="skypilot-system",
        why="w",
        breaks="b",
        source="code, test",
    )
    subject = Subject.service_account("sky-sa", "default")
    finding = _state_with_role_in(where).review(subject, [req]).findings[0]
    assert (finding.decision is Decision.ALLOWED) is allowed, finding
