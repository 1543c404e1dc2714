"""Across a cluster: --all-subjects and --service-accounts-of over manifests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from skycheck import rbac, subjects
from skycheck.cli import run
from skycheck.manifests import load_manifests
from skycheck.models import Subject

ROOT = Path(__file__).resolve().parent.parent.parent
DOCS_SA = ROOT / "tests" / "manifests" / "create-sky-sa.yaml"
VERSION = ("--skypilot-version", "0.14.1")


def _binding(kind: str, name: str, subject: str, role_kind: str, role: str, ns: str = "") -> str:
    meta = f"{{name: {name}, namespace: {ns}}}" if ns else f"{{name: {name}}}"
    return f"""\
apiVersion: rbac.authorization.k8s.io/v1
kind: {kind}
metadata: {meta}
subjects:
- {subject}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: {role_kind}, name: {role}}}
"""


READER = """\
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: reader, namespace: team-a}
rules:
- {apiGroups: [""], resources: [pods], verbs: [get, list]}
"""
DEFAULT_POLICY = """\
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: cluster-thing
  labels: {kubernetes.io/bootstrapping: rbac-defaults}
subjects:
- {kind: User, name: system:thing}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}
"""
EXTRA_SA = """\
apiVersion: v1
kind: ServiceAccount
metadata: {name: unbound, namespace: team-a}
"""


def world(tmp_path: Path) -> Path:
    """The docs' account in team-a (team-a/sky), a reader there (team-a/idle), an unbound
    account (team-a/unbound), a cluster-admin user and group, and a default-policy binding."""
    docs = (
        DOCS_SA.read_text()
        .replace("sky-sa", "sky")
        .replace("namespace: default", "namespace: team-a")
    )
    parts = [
        docs,
        READER,
        _binding(
            "RoleBinding", "idle", "{kind: ServiceAccount, name: idle}", "Role", "reader", "team-a"
        ),
        _binding(
            "ClusterRoleBinding",
            "alice",
            "{kind: User, name: alice}",
            "ClusterRole",
            "cluster-admin",
        ),
        _binding(
            "ClusterRoleBinding",
            "devs",
            "{kind: Group, name: sky-devs}",
            "ClusterRole",
            "cluster-admin",
        ),
        DEFAULT_POLICY,
        EXTRA_SA,
    ]
    path = tmp_path / "rbac.yaml"
    path.write_text("\n---\n".join(parts))
    return path


def audit(capsys, path: Path, *flags: str, code: int | None = 0) -> dict:
    got = run(["--manifests", str(path), *VERSION, *flags, "-o", "json"])
    if code is not None:
        assert got == code
    return json.loads(capsys.readouterr().out)


def identities(doc: dict) -> list[str]:
    return [row["identity"] for row in doc["summary"]["rows"]]


def test_all_subjects_audits_who_holds_core_and_nobody_else(capsys, tmp_path):
    doc = audit(capsys, world(tmp_path), "--all-subjects")
    # Users, groups, then service accounts; the reader holds too little, the unbound
    # account nothing, and the default policy's subject is the control plane's own.
    assert identities(doc) == ["User alice", "Group sky-devs", "ServiceAccount team-a/sky"]
    assert [r["subject"]["username"] for r in doc["reports"]] == [
        "alice",
        "",
        "system:serviceaccount:team-a:sky",
    ]
    rows = {row["identity"]: row for row in doc["summary"]["rows"]}
    assert rows["User alice"]["excess"]["critical"] >= 1  # the wildcard of cluster-admin
    assert rows["Group sky-devs"]["kind"] == "Group"
    assert rows["ServiceAccount team-a/sky"]["namespace"] == "team-a"  # its own namespace
    assert rows["User alice"]["namespace"] == "default"
    assert doc["summary"]["verdicts"] == {"pass": 3, "fail": 0, "unknown": 0}
    totals = doc["summary"]["excess"]
    for risk in ("critical", "high", "medium", "low"):
        assert totals[risk] == sum(row["excess"][risk] for row in doc["summary"]["rows"])


def test_a_namespace_given_applies_to_every_identity(capsys, tmp_path):
    doc = audit(capsys, world(tmp_path), "--all-subjects", "-n", "team-b")
    # team-a/sky's roles are in team-a: checked in team-b it cannot run SkyPilot there.
    assert identities(doc) == ["User alice", "Group sky-devs"]
    assert {r["namespace"] for r in doc["reports"]} == {"team-b"}


def test_service_accounts_of_a_namespace_are_audited_whatever_they_hold(capsys, tmp_path):
    doc = audit(capsys, world(tmp_path), "--service-accounts-of", "team-a", code=1)
    assert identities(doc) == [
        "ServiceAccount team-a/default",
        "ServiceAccount team-a/idle",
        "ServiceAccount team-a/sky",
        "ServiceAccount team-a/unbound",
    ]
    verdicts = {row["identity"]: row["verdict"] for row in doc["summary"]["rows"]}
    assert verdicts["ServiceAccount team-a/sky"] == "pass"
    assert verdicts["ServiceAccount team-a/idle"] == "fail"
    missing = {row["identity"]: row["missing"] for row in doc["summary"]["rows"]}
    assert missing["ServiceAccount team-a/sky"] == 0
    assert missing["ServiceAccount team-a/idle"] > 0
    assert doc["verdict"] == "fail"


def test_both_selections_together_audit_each_identity_once(capsys, tmp_path):
    doc = audit(
        capsys, world(tmp_path), "--all-subjects", "--service-accounts-of", "team-a", code=1
    )
    ids = identities(doc)
    assert len(ids) == len(set(ids)) == 6
    assert "User alice" in ids and "ServiceAccount team-a/unbound" in ids


def test_each_identity_gets_the_report_its_own_check_makes(capsys, tmp_path):
    path = world(tmp_path)
    doc = audit(capsys, path, "--all-subjects")
    for args, index in (
        (["--sa", "team-a:sky", "-n", "team-a"], 2),
        (["--as", "alice", "-n", "default"], 0),
    ):
        single = audit(capsys, path, *args, "--excess")
        report = doc["reports"][index]
        assert report["subject"] == single["subject"]
        assert report["checks"] == single["checks"]
        assert report["excess"] == single["excess"]
        assert report["verdict"] == single["verdict"]


def test_exit_code_is_the_worst_over_identities(capsys, tmp_path):
    path = world(tmp_path)
    assert run(["--manifests", str(path), *VERSION, "--all-subjects"]) == 0
    capsys.readouterr()
    # alice's and the group's cluster-admin is critical excess: the gate fails the run.
    code = run(
        ["--manifests", str(path), *VERSION, "--all-subjects", "--fail-on-excess", "critical"]
    )
    assert code == 1
    capsys.readouterr()
    doc = audit(capsys, path, "--all-subjects", "--fail-on-excess", "critical", code=1)
    verdicts = {row["identity"]: row["verdict"] for row in doc["summary"]["rows"]}
    assert verdicts == {
        "User alice": "fail",
        "Group sky-devs": "fail",
        "ServiceAccount team-a/sky": "pass",
    }


def test_the_table_is_the_summary(capsys, tmp_path):
    assert run(["--manifests", str(world(tmp_path)), *VERSION, "--all-subjects"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "skycheck PASS  3 identities audited: 3 pass, 0 fail, 0 unknown"
    assert out[2].split() == [
        *("VERDICT", "IDENTITY", "NAMESPACE", "MISSING", "UNKNOWN"),
        *("CRITICAL", "HIGH", "MEDIUM", "LOW"),
    ]  # fmt: skip
    rows = [line.split() for line in out[3:]]
    assert [r[0] for r in rows] == ["PASS", "PASS", "PASS"]
    assert rows[2][1:4] == ["ServiceAccount", "team-a/sky", "team-a"]
    assert len(out) == 6


def test_an_audit_that_selects_nobody_passes_in_every_format(capsys, tmp_path):
    path = tmp_path / "rbac.yaml"
    path.write_text(READER)
    for fmt in ("table", "json", "yaml", "junit", "sarif", "markdown", "github", "prometheus"):
        assert run(["--manifests", str(path), "--all-subjects", "-o", fmt]) == 0, fmt
        out = capsys.readouterr().out
        if fmt == "table":
            assert out.startswith("skycheck PASS  0 identities audited")
        if fmt == "json":
            doc = json.loads(out)
            assert doc["reports"] == [] and doc["summary"]["identities"] == 0
        if fmt == "prometheus":
            assert 'skycheck_run_verdict{verdict="pass"} 1.0' in out


def test_the_audit_document_follows_the_report_schema(capsys, tmp_path):
    import jsonschema

    from skycheck.render.json_report import report_schema

    validator = jsonschema.Draft202012Validator(report_schema())
    doc = audit(
        capsys, world(tmp_path), "--all-subjects", "--service-accounts-of", "team-a", code=1
    )
    validator.validate(doc)
    # Each report is one line: grep finds an identity's.
    assert run(["--manifests", str(world(tmp_path)), "--all-subjects", "-o", "json"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert sum(1 for line in lines if line.startswith('    {"schemaVersion": 1')) == 3


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--all-subjects", "--sa", "sky-sa"], "--all-subjects chooses the identities itself"),
        (["--service-accounts-of", "a", "--as", "bob"], "--service-accounts-of chooses"),
        (["--all-subjects"], "--all-subjects needs --manifests"),
        (["--service-accounts-of", "Not_A_Namespace"], "invalid namespace"),
    ],
)
def test_bad_flags_are_one_line_and_exit_2(capsys, tmp_path, flags, message):
    manifests = [] if flags == ["--all-subjects"] else ["--manifests", str(DOCS_SA)]
    assert run([*manifests, *flags]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_selection_holds_agrees_with_the_full_check(tmp_path):
    from skycheck.catalogue import bind, load_catalogue
    from skycheck.request import CheckRequest, collect

    path = world(tmp_path)
    loaded = load_manifests([str(path)], default_namespace="default")
    state = rbac.RbacState.with_bootstrap(loaded.objects)
    named = subjects.named_subjects(state)
    labels = [(s.kind, s.name) for s in named]
    assert ("User", "system:thing") not in labels  # the default policy's
    assert ("Group", "sky-devs") in labels and ("ServiceAccount", "idle") in labels
    catalogue = load_catalogue()
    for s in named:
        ns = s.namespace if s.is_service_account else "default"
        assert ns is not None
        need = bind(catalogue, ns, ("core",), ("core",), version="0.14.1")
        quick = subjects.holds(state, s, [r for r in need if r.effect.value == "fatal"])
        flag = {"sa": f"{ns}:{s.name}"} if s.is_service_account else {}
        if s.kind == "User":
            flag = {"as_user": s.name}
        if s.kind == "Group":
            continue  # a group has no flag of its own; the audit covers it above
        req = CheckRequest(
            manifests=(str(path),),
            namespace=ns,
            skypilot_version="0.14.1",
            features=("core",),
            **flag,
        )
        report = collect(req).reports[0]
        assert quick == subjects.holds_core(report), s


def test_group_subject_carries_the_groups_its_members_do():
    g = subjects.group_subject("sky-devs")
    assert (g.kind, g.username, g.groups) == ("Group", "", ("sky-devs", "system:authenticated"))
    assert g.bindable
    assert subjects.group_subject("system:unauthenticated").groups == ("system:unauthenticated",)
    assert not Subject("User", "(unknown)", None, "").bindable


def test_service_accounts_of_lists_defined_bound_and_default(tmp_path):
    loaded = load_manifests([str(world(tmp_path))], default_namespace="default")
    state = rbac.RbacState.with_bootstrap(loaded.objects)
    got = subjects.service_accounts_of(state, ["team-a", "empty"], loaded.service_accounts)
    assert [(s.namespace, s.name) for s in got] == [
        ("empty", "default"),
        ("team-a", "default"),
        ("team-a", "idle"),
        ("team-a", "sky"),
        ("team-a", "unbound"),
    ]


def test_the_github_action_summarizes_an_audit_that_selects_nobody(capsys, tmp_path):
    from skycheck import github_action

    path = tmp_path / "rbac.yaml"
    path.write_text(READER)
    summary, outputs = tmp_path / "summary.md", tmp_path / "outputs"
    env = {
        "INPUT_MANIFESTS": str(path),
        "INPUT_ARGS": "--all-subjects",
        "GITHUB_STEP_SUMMARY": str(summary),
        "GITHUB_OUTPUT": str(outputs),
    }
    assert github_action.run(env) == 0
    capsys.readouterr()
    assert "0 reports" in summary.read_text()
    assert "verdict=pass" in outputs.read_text()
