"""Read-only proof: the API server's audit log shows skycheck never writes anything.

The test control plane logs every request at Metadata level. Each case runs a full live check
(``--all-features``, JSON report and a fix-it manifest) in one identity mode, between two audit
marks, and then reads what the skycheck identity did in that window: only GET/LIST/WATCH, and
``create`` of the four review kinds, which the API server answers and never stores
(SelfSubjectReview, SelfSubjectAccessReview, SubjectAccessReview, LocalSubjectAccessReview).

Each case also checks that the method it meant to exercise really was used (the window is not
empty, the expected review kind is there), so a filter that missed skycheck's requests fails.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests._catalogue import full_check_count
from tests.integration._scenarios import scenario
from tests.reliability._util import READ_VERBS, REVIEW_RESOURCES, AuditWindow, invoke

pytestmark = pytest.mark.cluster
ADMIN = "skycheck-admin"  # the harness's admin token, also kube-controller-manager's


@pytest.fixture(scope="module", autouse=True)
def system_namespaces(cluster):
    """The docs' manifest binds in these; they must exist for it to apply."""
    for name in ("skypilot-system", "ingress-nginx"):
        cluster.create_namespace(name, exist_ok=True)


REVIEWER = """
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {{name: "reviewer-{ns}"}}
rules:
- apiGroups: [authorization.k8s.io]
  resources: [subjectaccessreviews]
  verbs: [create]
- apiGroups: [""]
  resources: [namespaces, serviceaccounts]
  verbs: [get]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {{name: "reviewer-{ns}"}}
subjects: [{{kind: ServiceAccount, name: reviewer, namespace: "{ns}"}}]
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "reviewer-{ns}"}}
"""

LOCAL_REVIEWER = """
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{name: local-reviewer, namespace: "{ns}"}}
rules:
- apiGroups: [authorization.k8s.io]
  resources: [localsubjectaccessreviews]
  verbs: [create]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: bob-local-reviewer, namespace: "{ns}"}}
subjects: [{{kind: User, name: bob, apiGroup: rbac.authorization.k8s.io}}]
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: local-reviewer}}
"""

IMPERSONATOR = """
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {{name: "ro-impersonate-{ns}"}}
rules:
- apiGroups: [""]
  resources: [serviceaccounts]
  verbs: [impersonate]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {{name: "ro-alice-impersonates-{ns}"}}
subjects: [{{kind: User, name: alice, apiGroup: rbac.authorization.k8s.io}}]
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "ro-impersonate-{ns}"}}
"""

NAMESPACE_ADMIN = """
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: bob-admin, namespace: "{ns}"}}
subjects: [{{kind: User, name: bob, apiGroup: rbac.authorization.k8s.io}}]
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: admin}}
"""


@dataclass(frozen=True)
class Mode:
    """One way of asking: who runs skycheck, with which flags, through which review kinds."""

    kubeconfig: Path
    args: tuple[str, ...]
    identity: str  # the username the API server sees for skycheck's requests
    reviews: frozenset[str]  # review resources this mode must have used
    impersonates: bool = False
    cleanup: str = ""  # cluster-scoped YAML to delete afterwards


def _caller_ssar(cluster: Any, ns: str, sa_kc: Callable[[str], Path], user_kc: Any) -> Mode:
    cluster.apply(scenario("docs", ns))
    return Mode(
        sa_kc("sky-sa"),
        ("-n", ns),
        f"system:serviceaccount:{ns}:sky-sa",
        frozenset({"selfsubjectreviews", "selfsubjectaccessreviews"}),
    )


def _sa_via_sar(cluster: Any, ns: str, sa_kc: Callable[[str], Path], user_kc: Any) -> Mode:
    cluster.apply(scenario("group-binding", ns))
    cluster.apply(REVIEWER.format(ns=ns))
    return Mode(
        sa_kc("reviewer"),
        ("--sa", "sky-sa", "-n", ns),
        f"system:serviceaccount:{ns}:reviewer",
        frozenset({"subjectaccessreviews"}),
        cleanup=REVIEWER.format(ns=ns),
    )


def _as_user_groups(cluster: Any, ns: str, sa_kc: Callable[[str], Path], user_kc: Any) -> Mode:
    cluster.apply(REVIEWER.format(ns=ns))
    return Mode(
        sa_kc("reviewer"),
        ("--as", "carol", "--as-group", "sky-team", "--as-group", "devs", "-n", ns),
        f"system:serviceaccount:{ns}:reviewer",
        frozenset({"subjectaccessreviews"}),
        cleanup=REVIEWER.format(ns=ns),
    )


def _local_sar_only(cluster: Any, ns: str, sa_kc: Callable[[str], Path], user_kc: Any) -> Mode:
    cluster.apply(scenario("docs", ns))
    cluster.apply(LOCAL_REVIEWER.format(ns=ns))
    return Mode(
        user_kc("bob"),
        ("--sa", "sky-sa", "-n", ns),
        "bob",
        frozenset({"localsubjectaccessreviews"}),
    )


def _impersonation_only(cluster: Any, ns: str, sa_kc: Callable[[str], Path], user_kc: Any) -> Mode:
    cluster.apply(scenario("docs", ns))
    cluster.apply(IMPERSONATOR.format(ns=ns))
    return Mode(
        user_kc("alice"),
        ("--sa", "sky-sa", "-n", ns),
        "alice",
        frozenset({"selfsubjectaccessreviews"}),
        impersonates=True,
        cleanup=IMPERSONATOR.format(ns=ns),
    )


def _namespace_admin(cluster: Any, ns: str, sa_kc: Callable[[str], Path], user_kc: Any) -> Mode:
    # admin grants localsubjectaccessreviews and impersonation of the namespace's SAs: the
    # namespaced checks go through LocalSAR, the cluster-scoped ones through impersonation.
    cluster.apply(scenario("docs", ns))
    cluster.apply(NAMESPACE_ADMIN.format(ns=ns))
    return Mode(
        user_kc("bob"),
        ("--sa", "sky-sa", "-n", ns),
        "bob",
        frozenset({"localsubjectaccessreviews", "selfsubjectaccessreviews"}),
        impersonates=True,
    )


MODES: dict[str, Callable[..., Mode]] = {
    "caller-via-ssar": _caller_ssar,
    "sa-via-sar": _sa_via_sar,
    "as-user-and-groups-via-sar": _as_user_groups,
    "user-limited-to-local-sar": _local_sar_only,
    "user-allowed-only-impersonation": _impersonation_only,
    "namespace-admin-local-sar-and-impersonation": _namespace_admin,
}


def _resource(event: dict[str, Any]) -> tuple[str, str]:
    ref = event.get("objectRef") or {}
    return ref.get("apiGroup", ""), ref.get("resource", "")


def _is_read_or_review(event: dict[str, Any]) -> bool:
    if event["verb"] in READ_VERBS:
        return True
    ref = event.get("objectRef") or {}
    return (
        event["verb"] == "create"
        and _resource(event) in REVIEW_RESOURCES
        and not ref.get("name")
        and not ref.get("subresource")
    )


@pytest.mark.parametrize("mode_name", sorted(MODES))
def test_full_check_only_reads_and_creates_reviews(
    cluster, ns, sa_kubeconfig, user_kubeconfig, tmp_path, mode_name
):
    mode = MODES[mode_name](cluster, ns, sa_kubeconfig, user_kubeconfig)
    before = mode.kubeconfig.read_bytes()
    fix = tmp_path / "fix.yaml"
    try:
        audit = AuditWindow(cluster)  # audit marks bound what the run did
        outcome = invoke(
            [
                "--kubeconfig",
                mode.kubeconfig,
                *mode.args,
                "--all-features",
                "--remote-identity",
                "SERVICE_ACCOUNT",
                "-o",
                "json",
                "--fix",
                fix,
                "--debug",
            ]
        )
        window = audit.close()
    finally:
        if mode.cleanup:
            cluster.delete(mode.cleanup)

    assert outcome.code in (0, 1, 3), outcome
    assert "Traceback" not in outcome.err
    report = json.loads(outcome.out)
    assert len(report["checks"]) >= full_check_count()

    window = [e for e in window if e["user"]["username"] != ADMIN]  # the harness, the KCM
    mine = [e for e in window if e["user"]["username"] == mode.identity]
    assert mine, f"no audit events from {mode.identity}: the filter is wrong"
    # Only skycheck's identity acted in the window (besides the API server's own machinery).
    strangers = {
        e["user"]["username"]
        for e in window
        if not e["user"]["username"].startswith("system:")
        and e["user"]["username"] != mode.identity
    }
    assert not strangers, strangers

    writes = [e for e in mine if not _is_read_or_review(e)]
    assert not writes, json.dumps(writes[:3], indent=1)
    creates = [e for e in mine if e["verb"] == "create"]
    used = {_resource(e)[1] for e in creates}
    assert mode.reviews <= used, (mode.reviews, used)
    # Reviews are answered (201) and never stored: no object name, nothing to read back.
    assert all(e["responseStatus"]["code"] in (201, 403) for e in creates)
    if mode.impersonates:
        assert any(e.get("impersonatedUser") for e in mine)
    assert mode.kubeconfig.read_bytes() == before  # the kubeconfig is never rewritten


@pytest.mark.parametrize("mode_name", ["sa-via-sar"])
def test_many_contexts_are_read_only_too(cluster, ns, sa_kubeconfig, tmp_path, mode_name):
    """--all-contexts fans out over threads; still nothing but reads and reviews."""
    import yaml

    mode = MODES[mode_name](cluster, ns, sa_kubeconfig, None)
    config = yaml.safe_load(mode.kubeconfig.read_text())
    ctx = config["contexts"][0]
    config["contexts"] = [{"name": f"ctx-{i}", "context": ctx["context"]} for i in range(4)]
    kubeconfig = tmp_path / "many.kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(config))
    try:
        audit = AuditWindow(cluster)  # audit marks bound what the run did
        outcome = invoke(
            [
                "--kubeconfig",
                kubeconfig,
                "--all-contexts",
                *mode.args,
                "--all-features",
                "--remote-identity",
                "SERVICE_ACCOUNT",
                "-o",
                "json",
            ]
        )
        window = audit.close()
    finally:
        cluster.delete(mode.cleanup)
    assert len(outcome.report["reports"]) == 4
    mine = [e for e in window if e["user"]["username"] == mode.identity]
    assert len(mine) >= 4 * full_check_count()
    assert [e for e in mine if not _is_read_or_review(e)] == []
