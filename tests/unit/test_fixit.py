"""Fix-it manifests: exact, compact, deterministic, never '*'."""

from __future__ import annotations

import yaml

from skycheck.catalogue import bind, load_catalogue
from skycheck.engine import namespace_requirement
from skycheck.fixit import build_manifest, compact, fix_manifest, fix_namespaces, object_name
from skycheck.models import (
    Decision,
    Finding,
    Method,
    NamespacePrecondition,
    NamespaceState,
    Report,
    Subject,
)
from skycheck.render._common import fix_hint

SA = Subject.service_account("sky-sa", "default")


def _docs(text):
    return [d for d in yaml.safe_load_all(text) if d]


def test_names_are_derived_from_the_subject():
    assert object_name(SA) == "skycheck-sky-sa.default"
    assert object_name(Subject.user("Alice@Example.com")).startswith("skycheck-alice-example-com-")


def test_nothing_missing_means_no_manifest():
    assert build_manifest(SA, []) is None


def test_core_fix_has_role_clusterrole_and_bindings_and_no_wildcards():
    reqs = bind(load_catalogue(), "default", ["core"], ["core"])
    docs = _docs(build_manifest(SA, reqs))
    kinds = [(d["kind"], d["metadata"].get("namespace")) for d in docs]
    assert kinds == [
        ("ClusterRole", None),
        ("ClusterRoleBinding", None),
        ("Role", "default"),
        ("RoleBinding", "default"),
    ]
    for d in docs:
        assert d["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "skycheck"
        for rule in d.get("rules", []):
            assert "*" not in rule["verbs"] and "*" not in rule["resources"]
    binding = docs[3]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "sky-sa", "namespace": "default"}
    ]
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "skycheck-sky-sa.default",
    }


def test_resources_with_equal_verbs_merge_and_grant_exactly_the_union():
    reqs = bind(load_catalogue(), "default", ["core"], ["core"])
    rules = compact([r for r in reqs if r.namespace])
    granted = {(r.group, res, v) for r in rules for res in r.resources for v in r.verbs}
    wanted = {(r.group, r.resource_path, r.verb) for r in reqs if r.namespace}
    assert granted == wanted
    merged = [r for r in rules if "services" in r.resources]
    assert merged and set(merged[0].resources) == {"pods", "secrets", "services"}


def test_named_grants_are_never_merged_with_unnamed_ones():
    reqs = bind(load_catalogue(), "default", ["core"], ["core"])
    pods = [r for r in reqs if r.resource == "pods" and not r.subresource and r.verb == "get"]
    from dataclasses import replace

    named = replace(pods[0], id="x.get", rule_id="x", name="head-pod")
    rules = compact([pods[0], named])
    assert len(rules) == 2
    assert {r.names for r in rules} == {(), ("head-pod",)}


def _report(features, preconditions, denied_precondition_features=()):
    """A report in which every check of ``features`` is denied, with these preconditions."""
    reqs = bind(load_catalogue(), "default", features, features)
    findings = [Finding(r, Decision.DENIED, "no") for r in reqs]
    for pre in preconditions:
        if pre.feature in denied_precondition_features:
            req = namespace_requirement(pre.feature, pre.namespace, True)
            findings.append(Finding(req, Decision.DENIED, "missing", precondition=pre))
    return Report(
        mode="live",
        method=Method.SAR,
        context=None,
        namespace="default",
        subject=SA,
        findings=tuple(findings),
        features=tuple(features),
        required_features=tuple(features),
        preconditions=tuple(preconditions),
    )


def test_missing_skypilot_namespace_becomes_a_namespace_object_not_a_grant():
    pre = NamespacePrecondition(
        "object-store-mounting", "skypilot-system", NamespaceState.MISSING, Decision.DENIED
    )
    report = _report(["object-store-mounting"], [pre], ["object-store-mounting"])
    assert fix_namespaces(report) == ("skypilot-system",)
    docs = _docs(fix_manifest(report))
    assert docs[0]["kind"] == "Namespace"
    assert docs[0]["metadata"]["name"] == "skypilot-system"
    granted = [r for d in docs for r in d.get("rules", [])]
    assert granted and not [
        r for r in granted if "namespaces" in r["resources"] and "create" in r["verbs"]
    ]
    assert "kubectl create namespace skypilot-system && " in fix_hint(
        "fix.yaml", None, fix_namespaces(report)
    )


def test_nothing_is_granted_in_a_missing_namespace_another_component_installs():
    # kubectl auth reconcile would create ingress-nginx for a Role in it and "succeed"
    # with no ingress controller installed.
    pre = NamespacePrecondition("ingress", "ingress-nginx", NamespaceState.MISSING)
    report = _report(["core", "ingress"], [pre], ["ingress"])
    docs = _docs(fix_manifest(report))
    assert not [d for d in docs if d["metadata"].get("namespace") == "ingress-nginx"]
    assert not [d for d in docs if d["kind"] == "Namespace"]
    assert fix_namespaces(report) == ()
    assert [d["kind"] for d in docs if d["metadata"].get("namespace") == "default"]


def test_an_unreadable_namespace_gets_grants_and_no_namespace_object():
    pre = NamespacePrecondition(
        "ingress", "ingress-nginx", NamespaceState.UNKNOWN, why="the caller may not get namespaces"
    )
    docs = _docs(fix_manifest(_report(["ingress"], [pre])))
    assert [d["kind"] for d in docs if d["metadata"].get("namespace") == "ingress-nginx"] == [
        "Role",
        "RoleBinding",
    ]
    assert not [d for d in docs if d["kind"] == "Namespace"]
    assert not [
        r
        for d in docs
        for r in d.get("rules", [])
        if "namespaces" in r["resources"] and "create" in r["verbs"]
    ]


def test_users_are_bound_as_user_subjects():
    reqs = bind(load_catalogue(), "default", ["show-gpus"], ["show-gpus"])
    docs = _docs(build_manifest(Subject.user("alice", ("devs",)), reqs))
    assert docs[1]["subjects"] == [
        {"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "alice"}
    ]
