"""Nearest-miss explanations reach the user (offline mode)."""

from __future__ import annotations

from pathlib import Path

from skycheck.cli import run

ROOT = Path(__file__).resolve().parent.parent.parent
BROKEN = """
  - apiGroups: [ "*" ]
    resources: [ "apps" ]
    verbs: [ "daemonsets" ]
"""
GOOD = """
  - apiGroups: [ "apps" ]
    resources: [ "daemonsets" ]
    verbs: [ "*" ]
"""


def test_docs_short_snippet_is_explained_in_the_table(tmp_path, capsys):
    docs = (ROOT / "tests" / "manifests" / "create-sky-sa.yaml").read_text()
    assert GOOD in docs
    manifest = tmp_path / "sa.yaml"
    manifest.write_text(docs.replace(GOOD, BROKEN))
    code = run(
        [
            "--manifests",
            str(manifest),
            "--sa",
            "sky-sa",
            "-n",
            "default",
            "-f",
            "object-store-mounting",
        ]
    )
    out = " ".join(capsys.readouterr().out.split())
    assert code == 1
    assert "hint Role skypilot-system-service-account-role in namespace skypilot-system" in out
    assert "apps is an API group and daemonsets a resource, so the rule grants nothing" in out


def test_pods_star_is_explained(tmp_path, capsys):
    manifest = tmp_path / "sa.yaml"
    manifest.write_text("""
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: r, namespace: default}
rules: [{apiGroups: [""], resources: ["pods/*"], verbs: ["*"]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: rb, namespace: default}
subjects: [{kind: ServiceAccount, name: sky-sa, namespace: default}]
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: r}
""")
    assert run(["--manifests", str(manifest), "--sa", "sky-sa", "-n", "default", "-o", "json"]) == 1
    out = capsys.readouterr().out
    assert "pods/*, which is not a wildcard in RBAC" in out
