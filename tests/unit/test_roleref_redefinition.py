"""Offline mode refuses a binding redefined with another roleRef, as the API server does.

The real apiserver's refusal is shown in tests/integration/test_roleref_immutable.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from skycheck import rbac
from skycheck.cli import run
from skycheck.errors import ManifestError
from skycheck.manifests import load_manifests

BINDING = """\
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: b, namespace: ns}
subjects: [{kind: User, apiGroup: rbac.authorization.k8s.io, name: bob}]
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: ROLE}
"""
# The reproduction from the review: every authenticated user becomes cluster-admin.
BASIC_USER_TO_ADMIN = """\
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "system:basic-user"}
subjects: [{kind: Group, apiGroup: rbac.authorization.k8s.io, name: "system:authenticated"}]
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}
"""


def _binding(role: str) -> str:
    return BINDING.replace("ROLE", role)


def test_same_file_redefinition_names_both_documents(tmp_path: Path) -> None:
    f = tmp_path / "rb.yaml"
    f.write_text(_binding("view") + "---\n" + _binding("cluster-admin"), encoding="utf-8")
    with pytest.raises(ManifestError) as exc:
        load_manifests([f])
    line = exc.value.one_line()
    assert line.startswith(f"{f}: document 1: RoleBinding b in namespace ns changes roleRef")
    assert f"ClusterRole view (first defined in {f} document 0)" in line
    assert "to ClusterRole cluster-admin" in line and "immutable" in line
    assert "\n" not in line


def test_redefinition_across_files(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(_binding("view"), encoding="utf-8")
    (tmp_path / "b.yaml").write_text(_binding("edit"), encoding="utf-8")
    with pytest.raises(ManifestError) as exc:
        load_manifests([tmp_path])
    assert str(tmp_path / "a.yaml") in exc.value.one_line()
    assert exc.value.one_line().startswith(str(tmp_path / "b.yaml"))


def test_same_role_ref_redefinition_still_merges_later_wins(tmp_path: Path) -> None:
    f = tmp_path / "rb.yaml"
    second = _binding("view").replace("name: bob", "name: carol")
    f.write_text(_binding("view") + "---\n" + second, encoding="utf-8")
    m = load_manifests([f])
    state = rbac.RbacState(m.objects)
    (binding,) = state.role_bindings
    assert [s.name for s in binding.subjects] == ["carol"]
    assert any("defined twice" in w for w in m.warnings)


def test_bootstrap_binding_cannot_be_pointed_elsewhere(tmp_path: Path, capsys) -> None:
    f = tmp_path / "crb.yaml"
    f.write_text(BASIC_USER_TO_ADMIN, encoding="utf-8")
    code = run(["--manifests", str(f), "--as", "bob", "-o", "json"])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    (line,) = captured.err.splitlines()
    assert (
        "ClusterRoleBinding system:basic-user changes roleRef from ClusterRole system:basic-user"
        in line
    )
    assert "the Kubernetes bootstrap policy" in line and "cluster-admin" in line


def test_bootstrap_binding_with_same_role_ref_is_accepted(tmp_path: Path) -> None:
    f = tmp_path / "crb.yaml"
    f.write_text(
        BASIC_USER_TO_ADMIN.replace("name: cluster-admin", 'name: "system:basic-user"'),
        encoding="utf-8",
    )
    assert len(load_manifests([f]).objects) == 1
