"""skycheck.locate: every offline finding on the file and line it concerns.

Real runs (``cli.run``, ``-o json``) over manifests written into a temporary repository of
several files and documents; each fallback step has a case. Expected lines are found by
``# @marker`` comments on the line where the document or rule entry starts.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from skycheck.cli import run
from skycheck.locate import display_path

ACCOUNT = """\
apiVersion: v1  # @namespace
kind: Namespace
metadata:
  name: team-a
---
# the account SkyPilot runs as
apiVersion: v1  # @account
kind: ServiceAccount
metadata:
  name: sky-sa
  namespace: team-a
"""

ROLES = """\
apiVersion: rbac.authorization.k8s.io/v1  # @role
kind: Role
metadata:
  name: sky-role
  namespace: team-a
rules:
- apiGroups: [""]  # @pods-rule
  resources: ["pods", "pods/status"]
  verbs: ["get", "list", "watch"]
- apiGroups: [""]  # @services-rule
  resources: ["services"]
  verbs: ["*"]
---
apiVersion: rbac.authorization.k8s.io/v1  # @cluster-role
kind: ClusterRole
metadata:
  name: sky-nodes
rules:
- apiGroups: [""]  # @nodes-rule
  resources: ["nodes"]
  verbs: ["get", "list"]
"""

BINDINGS = """\
apiVersion: rbac.authorization.k8s.io/v1  # @crb
kind: ClusterRoleBinding
metadata:
  name: sky-nodes
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: sky-nodes}
subjects:
- kind: ServiceAccount  # @crb-subject
  name: sky-sa
  namespace: team-a
---
apiVersion: rbac.authorization.k8s.io/v1  # @rb
kind: RoleBinding
metadata:
  name: sky-rb
  namespace: team-a
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: sky-role}
subjects:
- kind: ServiceAccount  # @rb-subject
  name: sky-sa
"""


def line_of(text: str, marker: str) -> int:
    hits = [i for i, line in enumerate(text.splitlines(), 1) if line.endswith(f"# @{marker}")]
    assert len(hits) == 1, marker
    return hits[0]


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def check(
    capsys: pytest.CaptureFixture[str],
    manifests: str,
    *extra: str,
    sa: str = "sky-sa",
    namespace: str = "team-a",
) -> dict[str, dict[str, Any]]:
    """Run an offline check; its checks' locations by check id."""
    argv = ["--manifests", manifests, "--sa", sa, "-n", namespace, "-o", "json", *extra]
    code = run(argv)
    out = capsys.readouterr().out
    assert code in (0, 1), out
    return {c["id"]: c["location"] | {"decision": c["decision"]} for c in json.loads(out)["checks"]}


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repository with the account, roles and bindings in three files; the working
    directory is its top, as in a CI checkout."""
    write(
        tmp_path,
        {
            "deploy/rbac/account.yaml": ACCOUNT,
            "deploy/rbac/roles.yaml": ROLES,
            "deploy/rbac/bindings.yaml": BINDINGS,
        },
    )
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_a_granted_check_is_on_the_rule_that_grants_it(repo, capsys):
    got = check(capsys, "deploy/rbac")
    pods = got["core.pods.get"]
    assert pods["decision"] == "allowed"
    assert pods["path"] == "deploy/rbac/roles.yaml"
    assert pods["line"] == line_of(ROLES, "pods-rule")
    assert pods["basis"] == "grant" and pods["input"] == "file"
    assert pods["object"] == {"kind": "Role", "namespace": "team-a", "name": "sky-role"}
    assert pods["identity"] == "system:serviceaccount:team-a:sky-sa"
    assert pods["context"] is None
    # The cluster-scoped grant is the ClusterRole's rule, in the same file.
    nodes = got["core.nodes.list"]
    assert (nodes["basis"], nodes["line"]) == ("grant", line_of(ROLES, "nodes-rule"))
    assert nodes["object"] == {"kind": "ClusterRole", "namespace": "", "name": "sky-nodes"}
    # Every check has a line inside one of the user's files.
    assert all(loc["path"].startswith("deploy/rbac/") and loc["line"] >= 1 for loc in got.values())


def test_a_missing_verb_is_on_the_rule_for_the_same_resource(repo, capsys):
    got = check(capsys, "deploy/rbac")
    for check_id in ("core.pods.create", "core.pods-exec.create"):
        loc = got[check_id]
        assert loc["decision"] == "denied"
        assert (loc["path"], loc["line"], loc["basis"]) == (
            "deploy/rbac/roles.yaml",
            line_of(ROLES, "pods-rule"),
            "rule",
        )


def test_a_missing_resource_is_on_a_rule_of_its_api_group_else_on_the_bound_role(repo, capsys):
    got = check(capsys, "deploy/rbac")
    secrets = got["core.secrets.get"]  # core group: the bound roles have core-group rules
    assert secrets["basis"] == "group-rule"
    assert secrets["line"] in (line_of(ROLES, "nodes-rule"), line_of(ROLES, "pods-rule"))
    deployments = got["core.deployments.list"]  # apps: no rule of that group
    assert deployments["basis"] == "role"
    assert deployments["line"] in (line_of(ROLES, "cluster-role"), line_of(ROLES, "role"))


def test_a_binding_in_another_namespace_is_the_near_miss(tmp_path, monkeypatch, capsys):
    elsewhere = ROLES.replace("namespace: team-a", "namespace: team-b")
    binding = BINDINGS.split("---\n")[1].replace("namespace: team-a", "namespace: team-b")
    binding = binding.replace("name: sky-sa", "name: sky-sa\n  namespace: team-a")
    write(tmp_path, {"roles.yaml": elsewhere, "binding.yaml": binding, "account.yaml": ACCOUNT})
    monkeypatch.chdir(tmp_path)
    got = check(capsys, ".")
    loc = got["core.pods.get"]
    assert loc["decision"] == "denied"
    assert (loc["path"], loc["line"], loc["basis"]) == (
        "binding.yaml",
        line_of(binding, "rb"),
        "near-miss-binding",
    )
    assert loc["object"] == {"kind": "RoleBinding", "namespace": "team-b", "name": "sky-rb"}


def test_a_binding_of_a_look_alike_subject_is_the_near_miss(repo, capsys):
    # The RoleBinding names User sky-sa, not the ServiceAccount: its subject line.
    wrong = BINDINGS.replace(
        "- kind: ServiceAccount  # @rb-subject\n  name: sky-sa",
        "- kind: User  # @rb-subject\n  name: sky-sa\n  apiGroup: rbac.authorization.k8s.io",
    )
    assert wrong != BINDINGS
    (repo / "deploy/rbac/bindings.yaml").write_text(wrong)
    got = check(capsys, "deploy/rbac")
    loc = got["core.pods.get"]
    assert loc["decision"] == "denied"
    assert (loc["path"], loc["line"], loc["basis"]) == (
        "deploy/rbac/bindings.yaml",
        line_of(wrong, "rb-subject"),
        "near-miss-binding",
    )


def test_a_role_outside_the_manifests_leaves_the_binding(tmp_path, monkeypatch, capsys):
    # Bound to the bootstrap policy's ClusterRole view: it grants, and the binding is the
    # place (view has no file); what view lacks is on the binding's subject entry too.
    binding = BINDINGS.split("---\n")[1].replace(
        "kind: Role, name: sky-role", "kind: ClusterRole, name: view"
    )
    write(tmp_path, {"account.yaml": ACCOUNT, "binding.yaml": binding})
    monkeypatch.chdir(tmp_path)
    got = check(capsys, ".")
    granted = got["core.pods.get"]
    assert granted["decision"] == "allowed"
    assert (granted["path"], granted["line"], granted["basis"]) == (
        "binding.yaml",
        line_of(binding, "rb"),
        "grant",
    )
    missing = got["core.pods.create"]
    assert missing["decision"] == "denied"
    assert (missing["path"], missing["line"], missing["basis"]) == (
        "binding.yaml",
        line_of(binding, "rb-subject"),
        "binding",
    )


def test_nothing_bound_leaves_the_service_account_then_the_first_document(
    tmp_path, monkeypatch, capsys
):
    write(tmp_path, {"a.yaml": ACCOUNT, "b.yaml": ROLES})
    monkeypatch.chdir(tmp_path)
    got = check(capsys, ".")
    loc = got["core.pods.get"]
    assert (loc["path"], loc["line"], loc["basis"]) == (
        "a.yaml",
        line_of(ACCOUNT, "account"),
        "service-account",
    )
    assert loc["object"] == {"kind": "ServiceAccount", "namespace": "team-a", "name": "sky-sa"}
    # Another account, defined nowhere: the input's first document (a.yaml's Namespace).
    got = check(capsys, ".", sa="other")
    loc = got["core.pods.get"]
    assert (loc["path"], loc["line"], loc["basis"]) == (
        "a.yaml",
        line_of(ACCOUNT, "namespace"),
        "first-document",
    )
    assert loc["object"] == {"kind": "Namespace", "namespace": "", "name": "team-a"}


def test_an_aggregated_cluster_role_grants_through_the_role_it_picks(tmp_path, monkeypatch, capsys):
    roles = """\
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: sky-all
aggregationRule:
  clusterRoleSelectors:
  - matchLabels: {sky/part: "true"}
rules: []
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: sky-part
  labels: {sky/part: "true"}
rules:
- apiGroups: [""]  # @part-rule
  resources: ["pods"]
  verbs: ["get"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: sky-all
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: sky-all}
subjects:
- {kind: ServiceAccount, name: sky-sa, namespace: team-a}
"""
    write(tmp_path, {"agg.yaml": roles})
    monkeypatch.chdir(tmp_path)
    loc = check(capsys, "agg.yaml")["core.pods.get"]
    assert loc["decision"] == "allowed"
    assert (loc["line"], loc["basis"]) == (line_of(roles, "part-rule"), "grant")
    assert loc["object"] == {"kind": "ClusterRole", "namespace": "", "name": "sky-part"}


def test_list_items_have_their_own_lines(tmp_path, monkeypatch, capsys):
    listing = "apiVersion: v1\nkind: List\nitems:\n"
    for doc in (ROLES.split("---\n")[0], BINDINGS.split("---\n")[1]):
        lines = doc.splitlines()
        listing += "".join(("- " if i == 0 else "  ") + line + "\n" for i, line in enumerate(lines))
    write(tmp_path, {"list.yaml": listing})
    monkeypatch.chdir(tmp_path)
    loc = check(capsys, "list.yaml")["core.pods.get"]
    assert (loc["line"], loc["basis"]) == (line_of(listing, "pods-rule"), "grant")


def test_standard_input_has_a_line_and_no_path(repo, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO(ROLES + "---\n" + BINDINGS))
    loc = check(capsys, "-")["core.pods.get"]
    assert loc["path"] is None and loc["input"] == "stdin"
    assert loc["line"] == line_of(ROLES, "pods-rule")


def test_json_has_lines_too(tmp_path, monkeypatch, capsys):
    role = yaml.safe_load(ROLES.split("---\n")[0])
    binding = yaml.safe_load(BINDINGS.split("---\n")[1])
    # Two documents in a stream, then the same objects as the items of a kubectl List.
    stream = json.dumps(binding, indent=2) + "\n" + json.dumps(role, indent=2) + "\n"
    listing = json.dumps({"apiVersion": "v1", "kind": "List", "items": [binding, role]}, indent=4)
    write(tmp_path, {"stream.json": stream, "list.json": listing})
    monkeypatch.chdir(tmp_path)
    for name, text in (("stream.json", stream), ("list.json", listing)):
        lines = text.splitlines()
        pods_rule = next(i for i, line in enumerate(lines) if '"rules"' in line) + 2
        assert lines[pods_rule - 1].strip() == "{"
        got = check(capsys, name)
        loc = got["core.pods.get"]
        assert (loc["path"], loc["line"], loc["basis"]) == (name, pods_rule, "grant")
        assert loc["object"] == {"kind": "Role", "namespace": "team-a", "name": "sky-role"}
        missing = got["core.secrets.get"]  # the role's services rule: the same API group
        assert missing["basis"] == "group-rule" and missing["line"] == pods_rule
    # A List item's subject entry: bound to the bootstrap policy's view, what view lacks is
    # on the binding's subject.
    binding["roleRef"]["kind"], binding["roleRef"]["name"] = "ClusterRole", "view"
    listing = json.dumps({"apiVersion": "v1", "kind": "List", "items": [role, binding]}, indent=4)
    (tmp_path / "list.json").write_text(listing)
    lines = listing.splitlines()
    subject = next(i for i, line in enumerate(lines) if '"subjects"' in line) + 2
    loc = check(capsys, "list.json")["core.pods.create"]
    assert (loc["line"], loc["basis"]) == (subject, "binding")


def test_json_that_is_not_an_object_keeps_its_error(tmp_path, monkeypatch, capsys):
    # A document that the value-by-value walk does not take (an array at the top) is
    # decoded as before, and refused as before.
    role = yaml.safe_load(ROLES.split("---\n")[0])
    text = json.dumps(role) + "\n" + json.dumps([1, 2]) + "\n"
    write(tmp_path, {"odd.json": text})
    monkeypatch.chdir(tmp_path)
    assert run(["--manifests", "odd.json", "--sa", "sky-sa", "-n", "team-a"]) == 2
    assert "expected a Kubernetes object" in capsys.readouterr().err


def test_paths_are_relative_to_the_working_directory_else_absolute(repo, capsys, monkeypatch):
    monkeypatch.chdir(repo / "deploy")
    assert check(capsys, "rbac")["core.pods.get"]["path"] == "rbac/roles.yaml"
    outside = repo / "elsewhere"
    outside.mkdir()
    monkeypatch.chdir(outside)
    loc = check(capsys, str(repo / "deploy/rbac"))["core.pods.get"]
    assert loc["path"] == (repo / "deploy/rbac/roles.yaml").as_posix()
    assert display_path(str(repo / "a/../b.yaml"), repo) == "b.yaml"
    assert display_path(str(repo.parent / "x.yaml"), repo) == (repo.parent / "x.yaml").as_posix()


def test_a_later_definition_wins_its_location(repo, capsys):
    # kubectl apply keeps the later document; so does the location.
    again = ROLES.split("---\n")[0].replace("  # @role", "")
    again = again.replace('- apiGroups: [""]  # @pods-rule', '- apiGroups: [""]  # @again')
    (repo / "deploy/rbac/zz-override.yaml").write_text(again)
    loc = check(capsys, "deploy/rbac")["core.pods.get"]
    assert (loc["path"], loc["line"]) == ("deploy/rbac/zz-override.yaml", line_of(again, "again"))


def test_the_api_server_identity_from_rendered_manifests_is_located_too(
    tmp_path, monkeypatch, capsys
):
    helm = Path(__file__).resolve().parent.parent / "manifests/helm/skypilot-api-server.yaml"
    write(tmp_path, {"rendered.yaml": helm.read_text()})
    monkeypatch.chdir(tmp_path)
    assert run(["--manifests", "rendered.yaml", "-o", "json"]) in (0, 1)
    reports = json.loads(capsys.readouterr().out)["reports"]
    locations = [c["location"] for r in reports for c in r["checks"]]
    assert locations and {(loc["path"], loc["input"]) for loc in locations} == {
        ("rendered.yaml", "file")
    }
    assert any(loc["basis"] == "grant" for loc in locations)
