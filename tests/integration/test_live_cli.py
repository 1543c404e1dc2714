"""The live CLI on the real apiserver: identities, fallbacks, exit codes, outputs."""

from __future__ import annotations

import json

import pytest

from skycheck.cli import run
from tests.integration._scenarios import NAMESPACE_ADMIN, scenario

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("system_namespaces")]

LOCAL_REVIEWER = """
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{name: local-reviewer, namespace: {ns}}}
rules:
- apiGroups: [authorization.k8s.io]
  resources: [localsubjectaccessreviews]
  verbs: [create]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: bob-local-reviewer, namespace: {ns}}}
subjects: [{{kind: User, name: bob, apiGroup: rbac.authorization.k8s.io}}]
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: local-reviewer}}
"""

IMPERSONATOR = """
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {{name: "impersonate-{ns}"}}
rules:
- apiGroups: [""]
  resources: [serviceaccounts]
  verbs: [impersonate]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {{name: "alice-impersonates-{ns}"}}
subjects: [{{kind: User, name: alice, apiGroup: rbac.authorization.k8s.io}}]
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "impersonate-{ns}"}}
"""


def _json(capsys, args):
    code = run(args)
    captured = capsys.readouterr()
    return code, (json.loads(captured.out) if captured.out.strip() else None), captured.err


def test_caller_check_uses_ssar_and_names_the_caller(cluster, ns, sa_kubeconfig, capsys):
    cluster.apply(scenario("docs", ns))
    kubeconfig = sa_kubeconfig("sky-sa")
    code, report, _ = _json(capsys, ["--kubeconfig", str(kubeconfig), "-n", ns, "-o", "json"])
    assert report["method"] == "SelfSubjectAccessReview"
    assert report["subject"]["username"] == f"system:serviceaccount:{ns}:sky-sa"
    assert report["subject"]["kind"] == "ServiceAccount"
    assert f"system:serviceaccounts:{ns}" in report["subject"]["groups"]
    assert code == 0 and report["verdict"] == "pass"


def test_admin_caller_passes_everything(cluster, capsys):
    code, report, _ = _json(
        capsys, ["--kubeconfig", str(cluster.admin_kubeconfig), "--all-features", "-o", "json"]
    )
    assert code == 0 and all(c["decision"] == "allowed" for c in report["checks"])


def test_namespace_admin_falls_back_to_local_sar_and_impersonation(
    cluster, ns, user_kubeconfig, capsys
):
    # The built-in admin role grants localsubjectaccessreviews and impersonation of the
    # namespace's service accounts: namespaced checks go through LocalSubjectAccessReview,
    # cluster-scoped ones through impersonation, and every answer is still exact.
    cluster.apply(scenario("docs", ns))
    cluster.apply(NAMESPACE_ADMIN.format(ns=ns))
    code, report, err = _json(
        capsys,
        [
            "--kubeconfig",
            str(user_kubeconfig("bob")),
            "--sa",
            "sky-sa",
            "-n",
            ns,
            "-f",
            "core",
            "-o",
            "json",
        ],
    )
    assert "subjectaccessreviews" in err
    assert report["method"] == "Impersonation"
    # Every check SkyPilot cannot do without is granted; the docs' Role lacks only what
    # the lab found beyond it (listing deployments, which SkyPilot survives).
    assert all(c["decision"] == "allowed" for c in report["checks"] if c["effect"] == "fatal")
    assert {c["id"] for c in report["checks"] if c["decision"] != "allowed"} <= {
        "core.deployments.list"
    }
    assert code == 0


def test_local_sar_alone_leaves_cluster_checks_unknown(cluster, ns, user_kubeconfig, capsys):
    cluster.apply(scenario("docs", ns))
    cluster.apply(LOCAL_REVIEWER.format(ns=ns))
    code, report, _ = _json(
        capsys,
        [
            "--kubeconfig",
            str(user_kubeconfig("bob")),
            "--sa",
            "sky-sa",
            "-n",
            ns,
            "-f",
            "core",
            "-o",
            "json",
        ],
    )
    assert report["method"] == "LocalSubjectAccessReview"
    # The docs' Role grants every namespaced check but the lab-found deployments list.
    namespaced = [
        c for c in report["checks"] if c["namespace"] and c["id"] != "core.deployments.list"
    ]
    assert namespaced and all(c["decision"] == "allowed" for c in namespaced)
    cluster_checks = [c for c in report["checks"] if c["namespace"] == ""]
    assert cluster_checks and all(c["decision"] == "unknown" for c in cluster_checks)
    assert "impersonate" in cluster_checks[0]["reason"]
    assert report["verdict"] == "unknown" and code == 3


def test_impersonation_is_the_last_fallback(cluster, ns, user_kubeconfig, capsys):
    cluster.apply(scenario("docs", ns))
    cluster.apply(IMPERSONATOR.format(ns=ns))
    try:
        code, report, _ = _json(
            capsys,
            [
                "--kubeconfig",
                str(user_kubeconfig("alice")),
                "--sa",
                "sky-sa",
                "-n",
                ns,
                "-o",
                "json",
            ],
        )
    finally:
        cluster.delete(IMPERSONATOR.format(ns=ns))
    assert report["method"] == "Impersonation"
    assert code == 0 and report["verdict"] == "pass"


def test_not_allowed_to_ask_exits_3_naming_the_permission(cluster, ns, user_kubeconfig, capsys):
    code, report, err = _json(
        capsys, ["--kubeconfig", str(user_kubeconfig("bob")), "--sa", "sky-sa", "-n", ns]
    )
    assert code == 3 and report is None
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("skycheck: error:")
    assert "subjectaccessreviews" in lines[0] and "impersonate" in lines[0]


def test_unreachable_server_exits_3_with_one_line(tmp_path, capsys):
    kubeconfig = tmp_path / "dead.kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: dead\n"
        "clusters: [{name: dead, cluster: {server: 'https://127.0.0.1:9', "
        "insecure-skip-tls-verify: true}}]\n"
        "users: [{name: u, user: {token: canary-token-1234567890}}]\n"
        "contexts: [{name: dead, context: {cluster: dead, user: u}}]\n"
    )
    code = run(["--kubeconfig", str(kubeconfig), "--sa", "x", "-n", "default", "--timeout", "5"])
    err = capsys.readouterr().err
    assert code == 3
    assert "connection refused" in err and "canary-token" not in err
    assert len(err.strip().splitlines()) == 1


def test_missing_skypilot_system_fails_object_store_unless_creatable(cluster, ns, capsys):
    cluster.apply(scenario("docs", ns))
    cluster.delete_namespace("skypilot-system", wait=True)
    try:
        code, report, _ = _json(
            capsys,
            [
                "--kubeconfig",
                str(cluster.admin_kubeconfig),
                "--sa",
                "sky-sa",
                "-n",
                ns,
                "-f",
                "object-store-mounting",
                "-o",
                "json",
            ],
        )
        pre = [c for c in report["checks"] if ".namespace-skypilot-system" in c["id"]]
        assert len(pre) == 1 and pre[0]["decision"] == "denied"
        assert code == 1
        # The admin may create namespaces: the missing namespace is not a failure for it.
        code, report, _ = _json(
            capsys,
            [
                "--kubeconfig",
                str(cluster.admin_kubeconfig),
                "-n",
                ns,
                "-f",
                "object-store-mounting",
                "-o",
                "json",
            ],
        )
        pre = [c for c in report["checks"] if ".namespace-skypilot-system" in c["id"]]
        assert pre[0]["decision"] == "allowed" and code == 0
    finally:
        cluster.create_namespace("skypilot-system", exist_ok=True)


def test_a_namespace_read_only_by_name_is_looked_up(cluster, ns, tmp_path, capsys):
    """The nightly ties rbac-bootstrap to skypilot-system only by its by-name get: the
    namespace must still be looked up (missing, so its creation is checked and the fix
    creates it), never reported as a failed lookup."""
    cluster.apply(scenario("docs", ns))
    cluster.delete_namespace("skypilot-system", wait=True)
    fix = tmp_path / "fix.yaml"
    try:
        code, report, _ = _json(
            capsys,
            [
                "--kubeconfig",
                str(cluster.admin_kubeconfig),
                "--sa",
                "sky-sa",
                "-n",
                ns,
                "--remote-identity",
                "SERVICE_ACCOUNT",
                "--skypilot-version",
                "1.0.0.dev20261027",
                "--no-sky-config",
                "-f",
                "rbac-bootstrap",
                "--fix",
                str(fix),
                "-o",
                "json",
            ],
        )
        assert code == 1
        assert [(p["namespace"], p["state"]) for p in report["preconditions"]] == [
            ("skypilot-system", "missing")
        ]
        pre = [c for c in report["checks"] if ".namespace-skypilot-system" in c["id"]]
        assert [c["decision"] for c in pre] == ["denied"]
        assert "kind: Namespace" in fix.read_text() and "skypilot-system" in fix.read_text()
    finally:
        cluster.create_namespace("skypilot-system", exist_ok=True)


def test_missing_service_account_and_namespace_are_warned(cluster, capsys):
    code, _, err = _json(
        capsys,
        [
            "--kubeconfig",
            str(cluster.admin_kubeconfig),
            "--sa",
            "ghost",
            "-n",
            "no-such-ns",
            "-o",
            "json",
        ],
    )
    assert "namespace no-such-ns does not exist" in err
    assert "service account ghost does not exist" in err
    assert code == 1


@pytest.mark.parametrize("fmt", ["table", "yaml", "junit", "sarif", "markdown", "github"])
def test_every_output_format_renders_a_live_report(cluster, ns, fmt, tmp_path, capsys):
    cluster.apply(scenario("nothing", ns))
    out = tmp_path / f"report.{fmt}"
    code = run(
        [
            "--kubeconfig",
            str(cluster.admin_kubeconfig),
            "--sa",
            "sky-sa",
            "-n",
            ns,
            "-o",
            fmt,
            "--output-file",
            str(out),
        ]
    )
    assert code == 1
    assert out.read_text().strip()
    assert capsys.readouterr().out == ""


def test_usage_errors_exit_2(cluster, capsys):
    k = str(cluster.admin_kubeconfig)
    for args in (
        ["--sa", "a", "--as", "b"],
        ["-o", "xml"],
        ["--fail-on", "sometimes"],
        ["-f", "no-such-feature"],
        ["--context", "nope"],
        ["--no-such-flag"],
    ):
        assert run(["--kubeconfig", k, *args]) == 2, args
        err = capsys.readouterr().err
        assert err.startswith("skycheck: error:") and len(err.strip().splitlines()) == 1, err


def test_fix_file_is_written_only_when_something_is_missing(cluster, ns, tmp_path, capsys):
    cluster.apply(scenario("docs", ns))
    fix = tmp_path / "fix.yaml"
    assert (
        run(
            [
                "--kubeconfig",
                str(cluster.admin_kubeconfig),
                "--sa",
                "sky-sa",
                "-n",
                ns,
                "--fix",
                str(fix),
            ]
        )
        == 0
    )
    assert not fix.exists()
    assert (
        run(
            [
                "--kubeconfig",
                str(cluster.admin_kubeconfig),
                "--sa",
                "sky-sa",
                "-n",
                ns,
                "--all-features",
                "--fix",
                str(fix),
            ]
        )
        == 1
    )
    assert "kind: Role" in fix.read_text()
    capsys.readouterr()


def test_sa_in_other_namespace_form(cluster, ns, capsys):
    cluster.apply(scenario("docs", ns))
    code, report, _ = _json(
        capsys,
        ["--kubeconfig", str(cluster.admin_kubeconfig), "--sa", f"{ns}:sky-sa", "-o", "json"],
    )
    assert report["subject"]["namespace"] == ns and report["namespace"] == ns and code == 0
