"""bind and escalate are decided as the apiserver decides them.

Creating a (Cluster)RoleBinding needs ``bind`` on the role, or holding every
permission the role grants; creating a role needs ``escalate``, or holding what
it grants (pkg/registry/rbac/escalation_check.go). skycheck asks the
alternative before failing such a check. Each case here compares skycheck's
decision with what the real apiserver does when the identity creates the very
object SkyPilot creates (server-side dry run: authorization and the escalation
check run, nothing is stored).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from skycheck.cli import run
from tests._catalogue import SKYPILOT_CLUSTER_RULES
from tests.cluster.controlplane import ControlPlane

pytestmark = pytest.mark.cluster

RBAC = "rbac.authorization.k8s.io"
CLUSTER_ROLE = "skypilot-service-account-cluster-role"
BINDINGS_CREATE = {"apiGroups": [RBAC], "resources": ["clusterrolebindings"], "verbs": ["create"]}


def _cluster_grant(ns: str, rules: list[dict[str, object]]) -> str:
    name = f"launcher-{ns}"
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "List",
            "items": [
                {
                    "apiVersion": f"{RBAC}/v1",
                    "kind": "ClusterRole",
                    "metadata": {"name": name},
                    "rules": rules,
                },
                {
                    "apiVersion": f"{RBAC}/v1",
                    "kind": "ClusterRoleBinding",
                    "metadata": {"name": name},
                    "subjects": [{"kind": "ServiceAccount", "name": "launcher", "namespace": ns}],
                    "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": name},
                },
            ],
        }
    )


def _without(rules: list[dict[str, object]], resource: str, verb: str) -> list[dict[str, object]]:
    out = []
    for rule in rules:
        resources = list(rule["resources"])  # type: ignore[call-overload]
        verbs = list(rule["verbs"])  # type: ignore[call-overload]
        if resource in resources and verb in verbs:
            rest = [r for r in resources if r != resource]
            if rest:
                out.append({**rule, "resources": rest})
            out.append({**rule, "resources": [resource], "verbs": [v for v in verbs if v != verb]})
        else:
            out.append(rule)
    return out


CLUSTER_CASES: dict[str, list[dict[str, object]]] = {
    # Holds everything the role grants: no bind needed.
    "holds-all": [*SKYPILOT_CLUSTER_RULES],
    # One verb short of it: bind is needed and missing.
    "holds-all-but-one": [
        *_without(SKYPILOT_CLUSTER_RULES, "ingressclasses", "watch"),
        BINDINGS_CREATE,
    ],
    # bind on exactly SkyPilot's role.
    "bind-named": [
        BINDINGS_CREATE,
        {
            "apiGroups": [RBAC],
            "resources": ["clusterroles"],
            "resourceNames": [CLUSTER_ROLE],
            "verbs": ["bind"],
        },
    ],
    # bind on another role only.
    "bind-other-name": [
        BINDINGS_CREATE,
        {
            "apiGroups": [RBAC],
            "resources": ["clusterroles"],
            "resourceNames": ["someone-else"],
            "verbs": ["bind"],
        },
    ],
}


@pytest.fixture(scope="module", autouse=True)
def skypilot_cluster_role(cluster: ControlPlane) -> None:
    cluster.apply(
        json.dumps(
            {
                "apiVersion": f"{RBAC}/v1",
                "kind": "ClusterRole",
                "metadata": {"name": CLUSTER_ROLE},
                "rules": SKYPILOT_CLUSTER_RULES,
            }
        )
    )


def _skycheck(
    cluster: ControlPlane, ns: str, capsys: pytest.CaptureFixture[str]
) -> tuple[dict[str, str], dict[str, object]]:
    code = run(
        [
            "--kubeconfig",
            str(cluster.admin_kubeconfig),
            "--sa",
            "launcher",
            "-n",
            ns,
            "-f",
            "rbac-bootstrap",
            "--remote-identity",
            "SERVICE_ACCOUNT",
            "-o",
            "json",
        ]
    )
    out = capsys.readouterr().out
    assert code in (0, 1), out
    return {c["id"]: c["decision"] for c in json.loads(out)["checks"]}, json.loads(out)


def _server_accepts(cluster: ControlPlane, kubeconfig: Path, obj: dict[str, object]) -> bool:
    result = cluster.kubectl(
        "create", "--dry-run=server", "-f", "-", kubeconfig=kubeconfig, input=json.dumps(obj)
    )
    if result.returncode == 0:
        return True
    assert "forbidden" in result.stderr.lower(), result.stderr
    return False


@pytest.mark.parametrize("case", sorted(CLUSTER_CASES))
def test_cluster_role_bind_matches_the_apiserver(
    cluster: ControlPlane,
    ns: str,
    case: str,
    sa_kubeconfig: Callable[[str], Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    kubeconfig = sa_kubeconfig("launcher")
    cluster.apply(_cluster_grant(ns, CLUSTER_CASES[case]))
    binding = {
        "apiVersion": f"{RBAC}/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": f"probe-{ns}"},
        "subjects": [
            {"kind": "ServiceAccount", "name": "skypilot-service-account", "namespace": ns}
        ],
        "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": CLUSTER_ROLE},
    }
    try:
        for attempt in range(10):  # the grant reaches the authorizer's cache a moment later
            decisions, report = _skycheck(cluster, ns, capsys)
            accepted = _server_accepts(cluster, kubeconfig, binding)
            want = "allowed" if accepted else "denied"
            if (
                decisions[
                    "rbac-bootstrap.clusterroles-bind.bind.skypilot-service-account-cluster-role"
                ]
                == want
                or attempt == 9
            ):
                break
            time.sleep(0.2)
        assert (
            decisions["rbac-bootstrap.clusterroles-bind.bind.skypilot-service-account-cluster-role"]
            == want
        ), (case, accepted)
        assert accepted is (case in ("holds-all", "bind-named"))
        check = next(
            c
            for c in report["checks"]
            if c["id"]
            == "rbac-bootstrap.clusterroles-bind.bind.skypilot-service-account-cluster-role"
        )
        if case == "holds-all":
            assert "escalation check" in check["reason"]
        if case == "holds-all-but-one":
            assert "nor does the identity hold" in check["reason"]
    finally:
        cluster.kubectl(
            "delete", "clusterrole,clusterrolebinding", f"launcher-{ns}", "--wait=false"
        )


@pytest.mark.parametrize("grant", ["star", "admin"])
def test_namespaced_role_escalate_and_bind_match_the_apiserver(
    cluster: ControlPlane,
    ns: str,
    grant: str,
    sa_kubeconfig: Callable[[str], Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """SkyPilot's Role grants everything in the namespace: only a launcher that holds
    everything there (or has escalate and bind) may create and bind it."""
    kubeconfig = sa_kubeconfig("launcher")
    role_ref = (
        {"kind": "Role", "name": "launcher"}
        if grant == "star"
        else {"kind": "ClusterRole", "name": "admin"}
    )
    objects = [
        {
            "apiVersion": f"{RBAC}/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "launcher", "namespace": ns},
            "subjects": [{"kind": "ServiceAccount", "name": "launcher", "namespace": ns}],
            "roleRef": {"apiGroup": RBAC, **role_ref},
        }
    ]
    if grant == "star":
        objects.insert(
            0,
            {
                "apiVersion": f"{RBAC}/v1",
                "kind": "Role",
                "metadata": {"name": "launcher", "namespace": ns},
                "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}],
            },
        )
    cluster.apply(json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}))
    role = {
        "apiVersion": f"{RBAC}/v1",
        "kind": "Role",
        "metadata": {"name": "skypilot-service-account-role", "namespace": ns},
        "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}],
    }
    # The binding's escalation check reads the role: it must exist (as SkyPilot's does).
    cluster.apply(json.dumps(role))
    binding = {
        "apiVersion": f"{RBAC}/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "probe", "namespace": ns},
        "subjects": [
            {"kind": "ServiceAccount", "name": "skypilot-service-account", "namespace": ns}
        ],
        "roleRef": {"apiGroup": RBAC, "kind": "Role", "name": "skypilot-service-account-role"},
    }
    new_role = {**role, "metadata": {"name": "probe", "namespace": ns}}
    for attempt in range(10):
        decisions, _ = _skycheck(cluster, ns, capsys)
        role_ok = _server_accepts(cluster, kubeconfig, new_role)
        bind_ok = _server_accepts(cluster, kubeconfig, binding)
        got = (
            decisions["rbac-bootstrap.roles-escalate.escalate"],
            decisions["rbac-bootstrap.roles-bind.bind.skypilot-service-account-role"],
        )
        want = ("allowed" if role_ok else "denied", "allowed" if bind_ok else "denied")
        if got == want or attempt == 9:
            break
        time.sleep(0.2)
    assert got == want
    assert (role_ok, bind_ok) == ((True, True) if grant == "star" else (False, False))
