"""The excess audit live equals the offline audit of the same RBAC, on the real apiserver.

Each world is applied to the control plane; the same manifests are audited offline
(``--manifests``, over the packaged bootstrap policy). Live, the admin reads the cluster's
RBAC objects (``source`` rbac-objects): the excess must be identical, item for item, grants
included. The account itself may read nothing but its own rules: a SelfSubjectRulesReview of
each namespace checked gives the same permissions for worlds whose grants are all namespaced
Roles (a rules review names no binding, so grants are not compared there). And every excess
permission reported, asked as a SubjectAccessReview, is allowed by the real authorizer.
"""

from __future__ import annotations

import json

import pytest

from skycheck.cli import run
from tests.integration._scenarios import scenario

pytestmark = pytest.mark.cluster

# Worlds with cluster-wide grants, aggregated and bootstrap roles, wildcards, resourceNames
# and the namespace quirk (wrong-namespace: a Role of * on * in kube-public).
OBJECT_WORLDS = (
    "docs",
    "cluster-admin",
    "rolebinding-to-clusterrole",
    "pods-star",
    "wrong-namespace",
)
# Worlds whose every grant is a Role in the checked namespace (what a rules review can place).
REVIEW_WORLDS = ("explicit-verbs", "pods-star", "resource-names-only", "group-binding")
# Worlds that hold exactly a launch's need: their excess must be empty on both sides.
NO_EXCESS = ("rolebinding-to-clusterrole",)
COMMON = ["--sa", "sky-sa", "--excess", "--fail-on", "never", "--skypilot-version", "0.14.1"]


def _json(args: list[str], capsys) -> dict:
    code = run(args)
    out = capsys.readouterr().out
    assert code == 0, out[-2000:]
    return json.loads(out)


def _offline(tmp_path, text: str, ns: str, capsys) -> dict:
    path = tmp_path / "world.yaml"
    path.write_text(text)
    return _json([*COMMON, "-n", ns, "--manifests", str(path), "-o", "json"], capsys)


def _permissions(doc: dict) -> list[tuple]:
    keys = ("verb", "group", "resource", "subresource", "namespace", "name", "risk", "needed")
    return sorted(tuple(i[k] for k in keys) for i in doc["excess"])


@pytest.mark.parametrize("name", OBJECT_WORLDS)
def test_live_rbac_objects_give_the_offline_excess(
    cluster, ns, name, capsys, tmp_path, system_namespaces
):
    text = scenario(name, ns)
    cluster.apply(text)
    offline = _offline(tmp_path, text, ns, capsys)
    live = _json(
        ["--kubeconfig", str(cluster.admin_kubeconfig), *COMMON, "-n", ns, "-o", "json"], capsys
    )
    if name in NO_EXCESS:
        # get/list/create of pods and services is what a launch needs (get services for
        # ports), and a RoleBinding does not reach nodes: both sides must say "none".
        assert offline["excess"] == [] and offline["excessSummary"]["state"] == "complete"
    else:
        assert offline["excess"]  # the other worlds hold something beyond the need
    assert live["excessSummary"]["source"] == "rbac-objects"
    assert live["excessSummary"]["state"] == "complete"
    assert live["excess"] == offline["excess"]
    assert live["excessSummary"]["counts"] == offline["excessSummary"]["counts"]
    if name == "docs":
        secrets = {
            i["verb"]: i["risk"]
            for i in live["excess"]
            if i["resource"] == "secrets" and not i["wildcard"]
        }
        assert len(secrets) == 8 and set(secrets.values()) <= {"high", "critical"}
    if name == "cluster-admin":
        assert any(i["wildcard"] and i["risk"] == "critical" for i in live["excess"])


@pytest.mark.parametrize("name", REVIEW_WORLDS)
def test_a_rules_review_gives_the_offline_permissions(
    cluster, ns, name, capsys, tmp_path, sa_kubeconfig, system_namespaces
):
    text = scenario(name, ns)
    cluster.apply(text)
    offline = _offline(tmp_path, text, ns, capsys)
    kubeconfig = sa_kubeconfig("sky-sa")
    # The account checks itself (no --sa): the caller, who may not list RBAC objects.
    args = ["--kubeconfig", str(kubeconfig), "-n", ns, "--excess", "--fail-on", "never"]
    live = _json([*args, "--skypilot-version", "0.14.1", "--no-sky-config", "-o", "json"], capsys)
    assert offline["excess"]
    summary = live["excessSummary"]
    assert summary["source"] == "SelfSubjectRulesReview"
    assert summary["state"] == "complete"  # RBAC alone: the apiserver marks nothing incomplete
    assert _permissions(live) == _permissions(offline)
    assert all(
        g["roleKind"] == "SelfSubjectRulesReview" for i in live["excess"] for g in i["grantedBy"]
    )


def test_fail_on_excess_gates_live(cluster, ns, capsys, system_namespaces):
    cluster.apply(scenario("docs", ns))
    args = ["--kubeconfig", str(cluster.admin_kubeconfig), "--sa", "sky-sa", "-n", ns]
    assert (
        run([*args, "--skypilot-version", "0.14.1", "--fail-on-excess", "high", "-o", "json"]) == 1
    )
    assert json.loads(capsys.readouterr().out)["excessSummary"]["verdict"] == "fail"


def test_the_least_privilege_manifest_applied_to_a_fresh_account_passes_with_no_excess(
    cluster, ns, capsys, tmp_path, system_namespaces
):
    cluster.apply(scenario("docs", ns))
    admin = [
        "--kubeconfig",
        str(cluster.admin_kubeconfig),
        "-n",
        ns,
        "--skypilot-version",
        "0.14.1",
    ]
    path = tmp_path / "least.yaml"
    assert run([*admin, "--sa", "sky-sa", "-f", "core", "--least-privilege", str(path)]) == 0
    capsys.readouterr()
    manifest = path.read_text().replace("sky-sa", "fresh-sa")
    cluster.create_service_account(ns, "fresh-sa")
    cluster.apply(manifest)
    doc = _json([*admin, "--sa", "fresh-sa", "-f", "core", "--excess", "-o", "json"], capsys)
    assert doc["verdict"] == "pass" and doc["excess"] == []
    assert doc["excessSummary"]["source"] == "rbac-objects"


QUIRK = """
apiVersion: v1
kind: ServiceAccount
metadata: {{name: sky-sa, namespace: {ns}}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{name: quirk, namespace: {ns}}}
rules:
- apiGroups: [""]
  resources: [namespaces, namespaces/status, nodes]
  verbs: ["*"]
- apiGroups: ["*"]
  resources: [configmaps]
  resourceNames: [one]
  verbs: ["*"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: quirk, namespace: {ns}}}
subjects: [{{kind: ServiceAccount, name: sky-sa, namespace: {ns}}}]
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: quirk}}
"""


def _allowed(cluster, ns: str, item: dict) -> bool:
    user = f"system:serviceaccount:{ns}:sky-sa"
    groups = ["system:serviceaccounts", f"system:serviceaccounts:{ns}", "system:authenticated"]
    attributes = {
        "verb": item["verb"],
        "group": item["group"],
        "resource": item["resource"],
        "subresource": item["subresource"],
        "namespace": item["namespace"],
        "name": item["name"],
    }
    body = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {"user": user, "groups": groups, "resourceAttributes": attributes},
    }
    answer = cluster.request("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", body)
    return bool(answer["status"].get("allowed"))


# A world with no excess has nothing for the apiserver to allow.
@pytest.mark.parametrize("name", [*(w for w in OBJECT_WORLDS if w not in NO_EXCESS), "quirk"])
def test_the_apiserver_allows_every_excess_permission_reported(
    cluster, ns, name, capsys, tmp_path, system_namespaces
):
    """Soundness: each excess item, asked as a SubjectAccessReview, is allowed (wildcard
    expansion, resourceNames and the namespace quirk as the real authorizer has them)."""
    text = QUIRK.format(ns=ns) if name == "quirk" else scenario(name, ns)
    cluster.apply(text)
    doc = _offline(tmp_path, text, ns, capsys)
    items = [i for i in doc["excess"] if not i["wildcard"] and not i["nonResourceURL"]]
    assert items
    refused = [i for i in items if not _allowed(cluster, ns, i)]
    assert refused == []
    if name == "quirk":
        reached = {(i["resource"], i["subresource"], i["namespace"], i["name"]) for i in items}
        assert ("namespaces", "", ns, ns) in reached
        assert not any(i["resource"] == "nodes" for i in items)
        other = {**items[0], "verb": "patch", "resource": "namespaces", "subresource": ""}
        assert not _allowed(cluster, ns, {**other, "namespace": "default", "name": "default"})


def _reaches(
    item, verb: str, group: str, resource: str, sub: str, namespace: str, name: str
) -> bool:
    """Whether an audit item (an ExcessItem, or a needed Requirement) stands for a request."""
    res, item_sub = item.resource, item.subresource
    wildcard = getattr(item, "wildcard", False)
    if wildcard:
        if item.group not in ("*", group) or (item_sub and item_sub != sub):
            return False
        if res != "*" and res != resource:
            return False
    elif (item.group, res, item_sub) != (group, resource, sub):
        return False
    if item.verb not in ("*", verb):
        return False
    where = getattr(item, "request_namespace", item.namespace)
    return where in ("", namespace) and item.name in ("", name)


@pytest.mark.parametrize("name", ["docs", "pods-star", "quirk"])
def test_every_permission_the_apiserver_allows_is_excess_or_needed(
    cluster, ns, name, tmp_path, system_namespaces
):
    """Completeness: every request the real authorizer allows the account (every known
    resource and verb, in its namespace and cluster-wide) is reported as excess, needed, or
    one of the default grants every identity holds."""
    from concurrent.futures import ThreadPoolExecutor

    from skycheck import excess, rbac
    from skycheck.manifests import load_manifests
    from skycheck.request import CheckRequest, collect

    text = QUIRK.format(ns=ns) if name == "quirk" else scenario(name, ns)
    cluster.apply(text)
    path = tmp_path / "world.yaml"
    path.write_text(text)
    req = CheckRequest(
        sa="sky-sa", namespace=ns, manifests=(str(path),), skypilot_version="0.14.1", excess=True
    )
    report = collect(req).reports[0]
    state = rbac.RbacState.with_bootstrap(load_manifests([str(path)], default_namespace=ns).objects)
    held = excess.audit(state, report, source="manifests", count_baseline=True).items
    needed = excess.needed_requirements(report)
    asks = []
    for group, resource, sub in excess.known_resources():
        for verb in excess.verbs_of(group, resource, sub):
            for where in (ns, ""):
                if excess.cluster_scoped(group, resource) and where:
                    continue
                asks.append((verb, group, resource, sub, where, ""))
    asks += [(v, "", "namespaces", "", ns, ns) for v in ("get", "update", "patch", "delete")]

    def allowed(ask: tuple[str, ...]) -> bool:
        keys = ("verb", "group", "resource", "subresource", "namespace", "name")
        return _allowed(cluster, ns, dict(zip(keys, ask, strict=True)))

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(allowed, asks))
    granted = [a for a, ok in zip(asks, answers, strict=True) if ok]
    assert len(granted) > 5
    missed = [
        a
        for a in granted
        if not any(_reaches(i, *a) for i in held) and not any(_reaches(r, *a) for r in needed)
    ]
    assert missed == []
