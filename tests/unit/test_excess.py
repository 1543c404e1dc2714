"""The excess audit offline: what an identity holds beyond the need, exact from manifests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from skycheck.catalogue import bind, load_catalogue
from skycheck.cli import run
from skycheck.excess import known_resources, needed_requirements
from skycheck.fixit import build_manifest
from skycheck.identity import service_account
from skycheck.models import Effect

ROOT = Path(__file__).resolve().parent.parent.parent
DOCS_SA = ROOT / "tests" / "manifests" / "create-sky-sa.yaml"
NEVER = ("--fail-on", "never")  # worlds that do not grant core: only the excess matters
SA = ["--sa", "sky-sa", "-n", "default", "--skypilot-version", "0.14.1"]


def audit(capsys, manifests, *extra: str, code: int = 0) -> dict:
    args = [*SA, "--manifests", str(manifests), "--excess", "-o", "json", *extra]
    assert run(args) == code
    return json.loads(capsys.readouterr().out)


def held(doc: dict, resource: str, **where: str) -> dict[str, dict]:
    """Excess items on ``resource`` (and the given fields), by verb; ``*`` for the item that
    stands for any other verb a wildcard verb matches."""
    return {
        i["verb"]: i
        for i in doc["excess"]
        if i["resource"] == resource and all(i[k] == v for k, v in where.items())
    }


def concrete(items: dict[str, dict]) -> dict[str, dict]:
    return {verb: i for verb, i in items.items() if not i["wildcard"]}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rbac.yaml"
    path.write_text(text)
    return path


def role(kind: str, rules: str, namespace: str = "default", binding_ns: str | None = None) -> str:
    ns_meta = f"\n  namespace: {namespace}" if kind == "Role" else ""
    bkind = "RoleBinding" if kind == "Role" or binding_ns else "ClusterRoleBinding"
    bmeta = f"\n  namespace: {binding_ns or namespace}" if bkind == "RoleBinding" else ""
    return f"""\
apiVersion: rbac.authorization.k8s.io/v1
kind: {kind}
metadata:
  name: r{ns_meta}
rules:
{rules}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: {bkind}
metadata:
  name: b{bmeta}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: {kind}, name: r}}
subjects:
- {{kind: ServiceAccount, name: sky-sa, namespace: default}}
"""


def test_the_docs_role_reports_every_secrets_verb_as_high_or_critical(capsys):
    doc = audit(capsys, DOCS_SA)
    secrets = concrete(held(doc, "secrets", namespace="default"))
    verbs = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")
    assert set(secrets) == set(verbs)
    other = held(doc, "secrets", namespace="default")["*"]  # the wildcard verb, said
    assert other["wildcard"] and other["needed"] == "also any other verb a wildcard matches"
    assert {i["risk"] for i in secrets.values()} <= {"high", "critical"}
    grant = secrets["get"]["grantedBy"][0]
    assert (grant["roleKind"], grant["role"], grant["bindingKind"], grant["binding"]) == (
        "Role",
        "sky-sa-role",
        "RoleBinding",
        "sky-sa-rb",
    )
    # The unused pod and service verbs are excess; what a launch does is not.
    pods = held(doc, "pods", namespace="default", subresource="")
    assert {"update", "deletecollection", "watch"} <= set(pods)
    assert not {"get", "list", "create", "delete", "patch"} & set(pods)  # patch: autodown
    services = held(doc, "services", namespace="default")
    assert "patch" in services and not {"get", "update"} & set(services)  # ports
    assert {"update", "patch"} <= set(held(doc, "pods", subresource="status"))
    # Cluster-wide pod reads (show-gpus, not required here) are excess beyond the namespace.
    wide = held(doc, "pods", namespace="", subresource="")
    assert wide["list"]["needed"] == "SkyPilot needs it only in namespace default"
    summary = doc["excessSummary"]
    assert summary["state"] == "complete" and summary["source"] == "manifests"
    assert sum(summary["counts"].values()) == len(doc["excess"])
    assert doc["verdict"] == "pass"  # excess alone never fails without --fail-on-excess


def test_risky_needs_carry_their_class_and_why(capsys):
    needs = {n["check"]: n for n in audit(capsys, DOCS_SA)["excessSummary"]["neededRisks"]}
    assert needs["core.pods-exec.create"]["risk"] == "high"
    assert "Setup" in needs["core.pods-exec.create"]["why"]
    assert needs["core.pods.create"]["riskId"] == "workload-create"


def test_fail_on_excess_gates_at_the_level_given(capsys):
    assert audit(capsys, DOCS_SA, "--fail-on-excess", "high", code=1)["verdict"] == "fail"
    doc = audit(capsys, DOCS_SA, "--fail-on-excess", "critical")
    assert doc["verdict"] == "pass" and doc["excessSummary"]["failOnExcess"] == "critical"
    assert run([*SA, "--manifests", str(DOCS_SA), "--fail-on-excess", "severe"]) == 2


def test_an_identity_holding_exactly_the_need_has_no_excess(capsys, tmp_path):
    # The need of -f core: core's checks SkyPilot 0.14.1 makes (fatal, degrades).
    first = audit(capsys, DOCS_SA, "-f", "core")
    manifest = first["excessSummary"]["leastPrivilege"]
    catalogue = load_catalogue()
    reqs = bind(catalogue, "default", ("core",), ("core",), version="0.14.1")
    need = [r for r in reqs if r.effect is not Effect.DOCUMENTED]
    # The least-privilege manifest is the fix-it generator's output for exactly that need.
    body = build_manifest(service_account("sky-sa", "default"), need)
    assert body and manifest.split("---\n", 1)[1] == body.split("---\n", 1)[1]
    doc = audit(capsys, write(tmp_path, manifest), "-f", "core")
    assert doc["excess"] == [] and doc["verdict"] == "pass"
    assert all(c["decision"] == "allowed" for c in doc["checks"] if c["effect"] != "documented")
    # --least-privilege writes the same manifest.
    out = tmp_path / "lp.yaml"
    args = [*SA, "--manifests", str(DOCS_SA), "-f", "core", "--least-privilege", str(out)]
    assert run(args) == 0
    capsys.readouterr()
    assert out.read_text() == manifest


def test_cluster_admin_is_critical_and_its_wildcard_is_said(capsys, tmp_path):
    crb = """\
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: admin}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}
subjects:
- {kind: ServiceAccount, name: sky-sa, namespace: default}
"""
    doc = audit(capsys, write(tmp_path, crb))
    wild = [i for i in doc["excess"] if i["wildcard"]]
    assert [(i["verb"], i["group"], i["resource"], i["risk"]) for i in wild] == [
        ("*", "*", "*", "critical")
    ]
    assert "future" in wild[0]["needed"]
    assert wild[0]["grantedBy"][0]["role"] == "cluster-admin"
    # ... and what it reaches is listed, escalate and impersonate among it.
    verbs = {(i["verb"], i["resource"]) for i in doc["excess"]}
    assert {("escalate", "clusterroles"), ("impersonate", "users"), ("get", "secrets")} <= verbs
    assert len(doc["excess"]) > 8 * 40
    assert doc["excessSummary"]["counts"]["critical"] > 10


def test_system_masters_bypasses_rbac_and_is_critical(capsys, tmp_path):
    args = ["--as", "alice", "--as-group", "system:masters", "-n", "default"]
    assert run([*args, "--manifests", str(DOCS_SA), "--excess", "-o", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    masters = [i for i in doc["excess"] if i["grantedBy"][0]["role"] == "system:masters"]
    assert [(i["verb"], i["resource"], i["risk"]) for i in masters] == [("*", "*", "critical")]
    assert masters[0]["grantedBy"][0]["roleKind"] == "Group"


def test_a_role_reaches_its_own_namespace(capsys, tmp_path):
    # The namespace quirk: namespaces verbs in a Role reach the namespace it lives in.
    rules = '- {apiGroups: [""], resources: [namespaces, nodes], verbs: ["*"]}'
    doc = audit(capsys, write(tmp_path, role("Role", rules, "team")), *NEVER)
    ns = held(doc, "namespaces")
    assert set(ns) == {"get", "update", "patch", "delete"}
    assert {(i["namespace"], i["name"]) for i in ns.values()} == {("team", "team")}
    assert ns["patch"]["risk"] == "high" and ns["delete"]["risk"] == "high"
    assert not held(doc, "nodes")  # a cluster-scoped resource in a Role reaches nothing


def test_a_wildcard_role_is_expanded_over_the_known_resources(capsys, tmp_path):
    rules = '- {apiGroups: ["*"], resources: ["*"], verbs: [get]}'
    doc = audit(capsys, write(tmp_path, role("Role", rules)), *NEVER)
    from skycheck.excess import cluster_scoped

    namespaced = {(g, r, s) for g, r, s in known_resources() if not cluster_scoped(g, r)}
    got = {(i["group"], i["resource"], i["subresource"]) for i in doc["excess"]}
    assert ("", "secrets", "") in got and ("", "pods", "log") in got
    assert ("", "nodes", "") not in got  # cluster-scoped: a Role does not reach it
    # Every namespaced resource known, its own namespace (read by name) and the wildcard,
    # but what core needs (get pods, services, pods/exec, pods/portforward in default).
    itself = {("", "namespaces", s) for s in ("", "status", "finalize")}
    needed = {("", r, s) for r, s in (("pods", ""), ("services", ""))}
    needed |= {("", "pods", "exec"), ("", "pods", "portforward")}
    assert not got & needed
    assert got | needed == namespaced | itself | {("*", "*", "")}
    assert held(doc, "*")["get"]["risk"] == "high"  # any other or future resource


def test_resource_names_narrow_the_excess(capsys, tmp_path):
    rules = '- {apiGroups: [""], resources: [configmaps], resourceNames: [a, b], verbs: ["*"]}'
    doc = audit(capsys, write(tmp_path, role("Role", rules)), *NEVER)
    items = [i for i in doc["excess"] if i["resource"] == "configmaps"]
    assert {i["name"] for i in items} == {"a", "b"}
    # create and deletecollection never name an object; a list or watch of one does
    # (fieldSelector metadata.name), so those are held for the names too.
    verbs = {i["verb"] for i in items}
    assert not {"create", "deletecollection"} & verbs and {"list", "watch"} <= verbs


@pytest.mark.parametrize(
    "fmt", ["table", "yaml", "markdown", "junit", "sarif", "github", "prometheus"]
)
def test_every_format_shows_the_excess(capsys, fmt):
    assert run([*SA, "--manifests", str(DOCS_SA), "--excess", "-o", fmt]) == 0
    out = capsys.readouterr().out
    if fmt == "prometheus":  # counts by risk, no resources
        assert 'skycheck_excess_permissions{context="",' in out and 'risk="high"} 13.0' in out
        return
    assert "secrets" in out and ("excess" in out.lower())


def test_needed_requirements_leave_out_documented_checks(capsys):
    from skycheck.request import CheckRequest, collect

    req = CheckRequest(
        sa="sky-sa", namespace="default", manifests=(str(DOCS_SA),), skypilot_version="0.14.1"
    )
    report = collect(req).reports[0]
    ids = {r.id for r in needed_requirements(report)}
    assert "core.pods.create" in ids and "core.secrets.get" not in ids


def test_the_json_excess_follows_the_report_schema(capsys, tmp_path):
    import jsonschema

    from skycheck.render.json_report import report_schema

    validator = jsonschema.Draft202012Validator(report_schema())
    validator.validate(audit(capsys, DOCS_SA, "--fail-on-excess", "low", code=1))
    masters = ["--as", "alice", "--as-group", "system:masters", "-n", "default"]
    assert run([*masters, "--manifests", str(DOCS_SA), "--excess", "-o", "json"]) == 0
    validator.validate(json.loads(capsys.readouterr().out))
    # Without --excess the keys are absent: the report is what it was.
    assert run([*SA, "--manifests", str(DOCS_SA), "-o", "json"]) == 0
    plain = json.loads(capsys.readouterr().out)
    assert "excess" not in plain and "excessSummary" not in plain


def _formats(capsys, *extra: str) -> dict[str, str]:
    out = {}
    for fmt in ("sarif", "junit", "github"):
        args = [*SA, "--manifests", str(DOCS_SA), "-f", "core", "-o", fmt, *extra]
        code = run(args)
        out[fmt] = capsys.readouterr().out
        out[fmt + "-code"] = str(code)
    return out


def test_ci_formats_carry_excess_as_warnings_and_gate_with_the_exit_code(capsys):
    import xml.etree.ElementTree as ET

    loose = _formats(capsys, "--excess")
    strict = _formats(capsys, "--fail-on-excess", "high")
    assert loose["sarif-code"] == "0" and strict["sarif-code"] == "1"
    for doc, gating in ((loose, False), (strict, True)):
        run_ = json.loads(doc["sarif"])["runs"][0]
        rules = {r["id"]: r for r in run_["tool"]["driver"]["rules"]}
        assert {"skycheck.excess.high", "skycheck.excess.low"} <= set(rules)
        excess = [r for r in run_["results"] if r["ruleId"].startswith("skycheck.excess.")]
        levels = {r["ruleId"]: r["level"] for r in excess}
        assert levels["skycheck.excess.high"] == ("error" if gating else "warning")
        assert levels["skycheck.excess.low"] == "warning"
        assert all(r["ruleIndex"] == list(rules).index(r["ruleId"]) for r in excess)
        suite = next(
            s for s in ET.fromstring(doc["junit"]).iter("testsuite") if s.get("name") == "excess"
        )
        # The high rows: secrets reads, writes and any other verb; DaemonSet create and
        # template writes; any other verb on pods/exec.
        assert int(suite.get("failures")) == (6 if gating else 0)
        high = [line for line in doc["github"].splitlines() if "excess high" in line]
        assert high and all(line.startswith("::error" if gating else "::warning") for line in high)


def test_unknown_excess_is_never_no_excess_and_fails_closed():
    from dataclasses import replace

    from skycheck.excess import unknown
    from skycheck.excess_types import Risk
    from skycheck.models import Verdict
    from skycheck.render import render
    from skycheck.request import CheckRequest, collect

    req = CheckRequest(
        sa="sky-sa", namespace="default", manifests=(str(DOCS_SA),), skypilot_version="0.14.1"
    )
    report = replace(collect(req).reports[0], excess=unknown("the caller may not list roles"))
    assert report.verdict is Verdict.PASS  # no --fail-on-excess: excess never gates
    gated = replace(report, fail_on_excess=Risk.CRITICAL)
    assert gated.verdict is Verdict.UNKNOWN and gated.exit_code == 3
    doc = json.loads(render(gated, "json"))
    assert doc["excess"] == [] and doc["excessSummary"]["state"] == "unknown"
    assert doc["excessSummary"]["verdict"] == "unknown"
    assert "Excess: unknown" in render(gated, "table")


def test_a_report_requiring_no_feature_needs_what_it_checks():
    # SkyPilot's own account is shown for information: no feature required, all checked.
    from dataclasses import replace

    from skycheck import excess, rbac
    from skycheck.manifests import load_manifests
    from skycheck.request import CheckRequest, collect

    req = CheckRequest(
        sa="sky-sa", namespace="default", manifests=(str(DOCS_SA),), skypilot_version="0.14.1"
    )
    report = collect(req).reports[0]
    state = rbac.RbacState.with_bootstrap(load_manifests([str(DOCS_SA)]).objects)
    core_only = excess.audit(state, report, source="manifests")
    info = excess.audit(state, replace(report, required_features=()), source="manifests")
    ingress = ("list", "", "services", "", "ingress-nginx", "")

    def keys(e):
        return {(i.verb, i.group, i.resource, i.subresource, i.namespace, i.name) for i in e.items}

    assert ingress in keys(core_only) and ingress not in keys(info)
    assert len(info.items) < len(core_only.items)
