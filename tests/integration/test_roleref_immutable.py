"""The real apiserver refuses a binding's roleRef change; offline mode follows it.

``kubectl apply`` of two documents defining one binding with different roleRefs creates the
first and fails on the second ("roleRef: Invalid value: ...: field is immutable"): the
first stands. Offline mode therefore treats such input as an error (exit 2) naming both
documents, including a redefinition of a bootstrap binding
(tests/unit/test_roleref_redefinition.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from skycheck.cli import run
from tests.cluster.controlplane import ControlPlane

pytestmark = pytest.mark.cluster


def _binding(ns: str, role: str) -> str:
    return (
        "apiVersion: rbac.authorization.k8s.io/v1\n"
        "kind: RoleBinding\n"
        f"metadata: {{name: b, namespace: {ns}}}\n"
        "subjects: [{kind: User, apiGroup: rbac.authorization.k8s.io, name: bob}]\n"
        f"roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: {role}}}\n"
    )


def test_kubectl_apply_refuses_the_second_role_ref_and_offline_says_so(
    cluster: ControlPlane, ns: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "two.yaml"
    path.write_text(_binding(ns, "view") + "---\n" + _binding(ns, "admin"), encoding="utf-8")
    applied = cluster.kubectl("apply", "-f", str(path))
    assert applied.returncode != 0
    assert "roleRef: Invalid value" in applied.stderr and "field is immutable" in applied.stderr
    stored = json.loads(cluster.kubectl("get", "rolebinding", "b", "-n", ns, "-o", "json").stdout)
    assert stored["roleRef"]["name"] == "view"  # the first definition stands
    assert not cluster.can_i("delete", "secrets", ns, as_user="bob")

    code = run(["--manifests", str(path), "--as", "bob", "-n", ns])
    err = capsys.readouterr().err
    assert code == 2
    assert "immutable" in err
    assert f"{path} document 0" in err and f"{path}: document 1" in err


def test_bootstrap_binding_role_ref_change_is_refused(cluster: ControlPlane) -> None:
    # Server-side dry run: the update is validated (and refused) but never stored.
    crb = (
        "apiVersion: rbac.authorization.k8s.io/v1\n"
        "kind: ClusterRoleBinding\n"
        'metadata: {name: "system:basic-user"}\n'
        "subjects: [{kind: Group, apiGroup: rbac.authorization.k8s.io, "
        'name: "system:authenticated"}]\n'
        "roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}\n"
    )
    applied = cluster.kubectl("apply", "--dry-run=server", "-f", "-", input=crb)
    assert applied.returncode != 0
    assert "roleRef: Invalid value" in applied.stderr and "field is immutable" in applied.stderr
