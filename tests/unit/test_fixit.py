"""Fix-it manifests: exact, compact, deterministic, never '*'."""

from __future__ import annotations

import yaml

from skycheck.catalogue import bind, load_catalogue
from skycheck.engine import namespace_requirement
from skycheck.fixit import build_manifest, compact, object_name
from skycheck.models import Subject

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


def test_missing_namespace_becomes_a_namespace_object_not_a_grant():
    ns_req = namespace_requirement("object-store-mounting", "skypilot-system", True)
    docs = _docs(build_manifest(SA, [ns_req]))
    assert [d["kind"] for d in docs] == ["Namespace"]
    assert docs[0]["metadata"]["name"] == "skypilot-system"


def test_users_are_bound_as_user_subjects():
    reqs = bind(load_catalogue(), "default", ["show-gpus"], ["show-gpus"])
    docs = _docs(build_manifest(Subject.user("alice", ("devs",)), reqs))
    assert docs[1]["subjects"] == [
        {"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "alice"}
    ]
