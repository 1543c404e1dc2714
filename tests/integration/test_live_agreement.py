"""skycheck's live decisions equal `kubectl auth can-i` on the real apiserver.

For many RBAC starting states, every check skycheck reports (the whole
catalogue) is asked again with `kubectl auth can-i --as=<service account>`;
the answers must be identical. kubectl impersonates, skycheck sends a
SubjectAccessReview with the account's groups: agreement proves the groups
are sent and that no check is made with the wrong scope or a wildcard.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest

from skycheck.cli import run
from tests._catalogue import full_check_count
from tests.integration._scenarios import ALL, scenario

pytestmark = pytest.mark.cluster


def _kubectl_resource(check: dict) -> str:
    res = check["resource"] + (f".{check['group']}" if check["group"] else "")
    return f"{res}/{check['name']}" if check["name"] else res


def _via_alternative(check: dict, kubectl_says: bool) -> bool:
    """bind/escalate granted because the identity holds what the role grants: kubectl's
    can-i asks the verb alone (test_escalation_alternatives proves the alternative)."""
    return (
        check["decision"] == "allowed"
        and not kubectl_says
        and "escalation check accepts instead" in check["reason"]
    )


def _skycheck_json(args: list[str], capsys) -> tuple[int, dict]:
    code = run(args)
    out = capsys.readouterr().out
    return code, json.loads(out)


@pytest.fixture(scope="module", autouse=True)
def system_namespaces(cluster):
    for name in ("skypilot-system", "ingress-nginx"):
        cluster.create_namespace(name, exist_ok=True)


@pytest.mark.parametrize("name", ALL)
def test_every_decision_equals_kubectl_auth_can_i(cluster, ns, name, capsys):
    cluster.apply(scenario(name, ns))
    code, report = _skycheck_json(
        [
            "--kubeconfig",
            str(cluster.admin_kubeconfig),
            "--sa",
            "sky-sa",
            "-n",
            ns,
            "--all-features",
            # Check sky-sa as a launcher on SkyPilot's default path: every rule applies.
            "--remote-identity",
            "SERVICE_ACCOUNT",
            "-o",
            "json",
        ],
        capsys,
    )
    assert report["method"] == "SubjectAccessReview"
    checks = [c for c in report["checks"] if not c["id"].count(".namespace-")]
    assert len(checks) == full_check_count()

    def kubectl(check: dict) -> bool:
        return cluster.can_i(
            check["verb"],
            _kubectl_resource(check),
            namespace=check["namespace"] or None,
            all_namespaces=not check["namespace"],
            subresource=check["subresource"] or None,
            as_user=f"system:serviceaccount:{ns}:sky-sa",
        )

    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(kubectl, checks))
    disagreements = [
        (c["id"], c["namespace"], c["decision"], kubectl_says)
        for c, kubectl_says in zip(checks, answers, strict=True)
        if ((c["decision"] == "allowed") != kubectl_says and not _via_alternative(c, kubectl_says))
        or c["decision"] == "unknown"
    ]
    assert disagreements == []
    # The exit code follows the decisions that gate (every feature required here; only
    # fatal checks gate, the others are shown with their effect).
    all_allowed = all(
        c["decision"] == "allowed" for c in report["checks"] if c["effect"] == "fatal"
    )
    assert code == (0 if all_allowed else 1)


def test_cluster_admin_passes_and_nothing_fails_every_check(cluster, ns, capsys):
    cluster.apply(scenario("nothing", ns))
    code, report = _skycheck_json(
        ["--kubeconfig", str(cluster.admin_kubeconfig), "--sa", "sky-sa", "-n", ns, "-o", "json"],
        capsys,
    )
    assert code == 1 and report["verdict"] == "fail"
    core = [c for c in report["checks"] if c["feature"] == "core"]
    assert core and all(c["decision"] == "denied" for c in core)
