"""The offline reviewer: findings, reasons, warnings and namespaces from manifests."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from skycheck import catalogue, rbac
from skycheck.manifests import load_manifests
from skycheck.models import Decision, Method, Requirement, Subject
from skycheck.review import Reviewer
from skycheck.review.offline import BUILTIN_NAMESPACES, OfflineReviewer

ROOT = Path(__file__).resolve().parents[2]
SKY_SA = Subject.service_account("sky-sa", "default")


def req(
    verb: str,
    resource: str,
    namespace: str = "default",
    group: str = "",
    subresource: str = "",
    name: str = "",
    rid: str = "",
) -> Requirement:
    return Requirement(
        id=rid or f"t.{verb}.{resource}.{subresource}.{namespace}",
        rule_id="t",
        feature="core",
        required=True,
        verb=verb,
        group=group,
        resource=resource,
        subresource=subresource,
        namespace=namespace,
        name=name,
        why="",
        breaks="",
        source="",
    )


def reviewer_for(yaml_text: str) -> OfflineReviewer:
    return OfflineReviewer.from_manifests(load_manifests(["-"], stdin=io.StringIO(yaml_text)))


SKYPILOT = ROOT / "tests" / "manifests" / "create-sky-sa.yaml"


@pytest.fixture(scope="module")
def sky() -> OfflineReviewer:
    return OfflineReviewer.from_manifests(load_manifests([SKYPILOT]))


def test_is_a_reviewer(sky: OfflineReviewer) -> None:
    reviewer: Reviewer = sky
    assert reviewer.mode == "offline"
    assert sky.review(SKY_SA, []).method is Method.OFFLINE


def test_one_finding_per_requirement_in_order(sky: OfflineReviewer) -> None:
    reqs = [
        req("create", "pods", subresource="exec"),
        req("get", "ingresses", group="networking.k8s.io"),
        req("list", "nodes", namespace=""),
    ]
    result = sky.review(SKY_SA, reqs)
    assert [f.requirement for f in result.findings] == reqs
    assert [f.decision for f in result.findings] == [
        Decision.ALLOWED,
        Decision.DENIED,
        Decision.ALLOWED,
    ]
    assert result.findings[0].reason == (
        'RBAC: allowed by RoleBinding "sky-sa-rb/default" of Role "sky-sa-role" '
        'to ServiceAccount "sky-sa/default"'
    )
    assert result.findings[2].reason.startswith(
        'RBAC: allowed by ClusterRoleBinding "sky-sa-cluster-role-binding"'
    )
    assert result.findings[1].reason == (
        "no role bound to ServiceAccount default/sky-sa grants "
        "get ingresses.networking.k8s.io -n default"
    )


def test_denial_reason_is_the_nearest_miss(sky: OfflineReviewer) -> None:
    result = sky.review(SKY_SA, [req("create", "pods", namespace="team")])
    (finding,) = result.findings
    assert finding.decision is Decision.DENIED
    assert finding.reason == "RoleBinding sky-sa-rb is in namespace default, the check is in team"


def test_core_feature_passes_for_the_documented_manifest(sky: OfflineReviewer) -> None:
    cat = catalogue.load_catalogue()
    reqs = catalogue.bind(cat, "default", ["core"], ["core"])
    assert reqs, "the catalogue has core rules"
    result = sky.review(SKY_SA, reqs)
    denied = [f.requirement.id for f in result.findings if f.decision is not Decision.ALLOWED]
    # The docs' Role lacks only what the lab found beyond it (deployments, which degrades).
    assert denied == ["core.deployments.list"]
    assert all(r.effect.value != "fatal" for r in reqs if r.id in denied)
    # Another identity gets nothing but the defaults.
    other = sky.review(Subject.service_account("other", "default"), reqs)
    assert all(f.decision is Decision.DENIED for f in other.findings)
    assert other.findings[0].reason == (
        "no RoleBinding or ClusterRoleBinding in the manifests applies to "
        "ServiceAccount default/other or its groups"
    )


def test_namespaces_field(sky: OfflineReviewer) -> None:
    reqs = [
        req("get", "pods", namespace="default"),
        req("get", "daemonsets", namespace="skypilot-system", group="apps"),
        req("get", "services", namespace="ingress-nginx"),
        req("get", "pods", namespace="kube-system"),
        req("list", "nodes", namespace=""),
        req("get", "pods", namespace="default", rid="again"),
    ]
    result = sky.review(SKY_SA, reqs)
    assert result.namespaces == (
        ("default", True),
        ("ingress-nginx", None),  # not in the manifests: unknown offline, not "missing"
        ("kube-system", True),
        ("skypilot-system", True),  # a Namespace object in the manifests
    )
    assert {"default", "kube-system", "kube-public", "kube-node-lease"} == BUILTIN_NAMESPACES


def test_warnings_dangling_refs_and_missing_service_account() -> None:
    reviewer = reviewer_for(
        """\
        apiVersion: rbac.authorization.k8s.io/v1
        kind: RoleBinding
        metadata: {name: rb, namespace: default}
        subjects: [{kind: ServiceAccount, name: sky-sa}]
        roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: sky-sa-role}
        ---
        apiVersion: rbac.authorization.k8s.io/v1
        kind: ClusterRoleBinding
        metadata: {name: not-mine}
        subjects: [{kind: User, name: bob}]
        roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: nope}
        """.replace("        ", "")
    )
    result = reviewer.review(SKY_SA, [req("get", "pods")])
    assert result.warnings == (
        "RoleBinding rb in namespace default references missing Role sky-sa-role: "
        "the binding grants nothing",
        "ServiceAccount default/sky-sa is not in the manifests; "
        "offline mode cannot tell whether it exists",
    )
    assert result.findings[0].decision is Decision.DENIED
    assert result.findings[0].reason == (
        "RoleBinding rb in namespace default references missing Role sky-sa-role"
    )
    # The default service account exists in every namespace: no warning for it.
    default_sa = reviewer.review(Subject.service_account("default", "default"), [])
    assert not any("not in the manifests" in w for w in default_sa.warnings)


def test_manifest_warnings_pass_through() -> None:
    reviewer = reviewer_for(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: r}\n"
    )
    warnings = reviewer.review(SKY_SA, []).warnings
    assert any("no metadata.namespace" in w for w in warnings)


def test_without_bootstrap_policy_nothing_is_granted_by_default() -> None:
    manifests = load_manifests([SKYPILOT])
    with_defaults = OfflineReviewer.from_manifests(manifests)
    bare = OfflineReviewer.from_manifests(manifests, bootstrap=False)
    ssar = req("create", "selfsubjectaccessreviews", namespace="", group="authorization.k8s.io")
    assert with_defaults.review(SKY_SA, [ssar]).findings[0].decision is Decision.ALLOWED
    assert bare.review(SKY_SA, [ssar]).findings[0].decision is Decision.DENIED


def test_binding_edit_evaluates_like_a_cluster() -> None:
    reviewer = reviewer_for(
        """\
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: sky-edit, namespace: default}
subjects: [{kind: ServiceAccount, name: sky-sa}]
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: edit}
"""
    )
    result = reviewer.review(
        SKY_SA,
        [
            req("create", "pods", subresource="exec"),
            req("create", "rolebindings", group="rbac.authorization.k8s.io"),
            req("list", "nodes", namespace=""),
        ],
    )
    assert [f.decision for f in result.findings] == [
        Decision.ALLOWED,
        Decision.DENIED,
        Decision.DENIED,
    ]
    assert result.findings[0].reason == (
        'RBAC: allowed by RoleBinding "sky-edit/default" of ClusterRole "edit" '
        'to ServiceAccount "sky-sa/default"'
    )


def test_reviewer_accepts_a_prebuilt_state() -> None:
    state = rbac.RbacState(
        [
            rbac.ClusterRole("c", (rbac.PolicyRule(("get",), ("",), ("pods",)),)),
            rbac.ClusterRoleBinding(
                "b", rbac.RoleRef("ClusterRole", "c"), (rbac.SubjectRef("Group", "devs"),)
            ),
        ]
    )
    reviewer = OfflineReviewer(state, namespaces=["team"], service_accounts=None)
    alice = Subject.user("alice", ("devs",))
    result = reviewer.review(alice, [req("get", "pods", namespace="team")])
    assert result.findings[0].decision is Decision.ALLOWED
    assert result.namespaces == (("team", True),)
    assert result.warnings == ()
