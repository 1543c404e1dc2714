"""Renderers: golden files for every format, and structural checks per format.

Reports are built by hand from the real catalogue (load_catalogue,
select_features, bind), so the goldens show real rule text. Regenerate the
goldens after an intended change with:

    SKYCHECK_UPDATE_GOLDEN=1 .venv/bin/pytest tests/unit/test_render.py

and review the diff. No network, no cluster.
"""

from __future__ import annotations

import functools
import json
import os
import random
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

import skycheck
from skycheck.catalogue import Catalogue, bind, load_catalogue, rules_dir, select_features
from skycheck.errors import UsageError
from skycheck.models import (
    Basis,
    Decision,
    FailOn,
    Finding,
    Location,
    Method,
    Report,
    Requirement,
    SkyPilotVersion,
    Subject,
)
from skycheck.render import RENDERERS, OutputFormat, render
from skycheck.render import prometheus as prometheus_mod
from skycheck.render import sarif as sarif_mod
from skycheck.render.github import command, escape_data, escape_property
from skycheck.render.json_report import report_schema, report_to_dict
from skycheck.render.markdown import escape as md_escape
from tests._catalogue import full_check_count

GOLDEN = Path(__file__).resolve().parent.parent / "golden"
SCHEMA = Path(skycheck.__file__).resolve().parent / "render" / "report.schema.json"
UPDATE = os.environ.get("SKYCHECK_UPDATE_GOLDEN") == "1"
FIX_PATH = "skycheck-fix.yaml"
EXT = {
    OutputFormat.TABLE: "table.txt",
    OutputFormat.JSON: "json",
    OutputFormat.YAML: "yaml",
    OutputFormat.JUNIT: "junit.xml",
    OutputFormat.SARIF: "sarif",
    OutputFormat.MARKDOWN: "md",
    OutputFormat.GITHUB: "github.txt",
    OutputFormat.PROMETHEUS: "prom",
}

FIX_MANIFEST = """\
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: skycheck-fix
  namespace: default
rules:
- apiGroups: [""]
  resources: ["pods/exec"]
  verbs: ["create", "get"]
"""

ALLOWED = 'RBAC: allowed by RoleBinding "sky" of Role "sky-role" to ServiceAccount "sky-sa/default"'


# --- building reports by hand ----------------------------------------------------------


@functools.cache
def _catalogue() -> Catalogue:
    return load_catalogue()


def _requirements(namespace: str, chosen: tuple[str, ...] = ()) -> tuple[Requirement, ...]:
    cat = _catalogue()
    features, required = select_features(cat, chosen, False)
    return bind(cat, namespace, features, required)


def _findings(
    reqs: tuple[Requirement, ...],
    denied: frozenset[str] | set[str] = frozenset(),
    unknown: dict[str, str] | None = None,
) -> tuple[Finding, ...]:
    unknown = unknown or {}
    out = []
    for r in reqs:
        if r.id in denied:
            out.append(Finding(r, Decision.DENIED, reason=""))
        elif r.id in unknown:
            out.append(Finding(r, Decision.UNKNOWN, evaluation_error=unknown[r.id]))
        else:
            out.append(Finding(r, Decision.ALLOWED, reason=ALLOWED))
    for want in (*denied, *unknown):
        assert any(r.id == want for r in reqs), f"no such check {want}"
    return tuple(out)


def _report(findings: tuple[Finding, ...], chosen: tuple[str, ...] = (), **kw: Any) -> Report:
    cat = _catalogue()
    features, required = select_features(cat, chosen, False)
    base: dict[str, Any] = {
        "mode": "live",
        "method": Method.SAR,
        "context": "kind-sky",
        "namespace": "default",
        "subject": Subject.service_account("sky-sa", "default"),
        "findings": findings,
        "features": features,
        "required_features": required,
    }
    base.update(kw)
    return Report(**base)


def pass_report() -> Report:
    return _report(_findings(_requirements("default")))


def fail_report() -> Report:
    reqs = _requirements("default")
    denied = {
        "core.pods-exec.create",
        "core.pods-exec.get",
        "core.nodes.list",
        "show-gpus.pods.list",
        "ingress.ingressclasses.list",
        "ingress.nginx-services.list",
        "object-store-mounting.daemonsets.create",
    }
    return _report(
        _findings(reqs, denied),
        mode="live",
        method=Method.SSAR,
        context="prod-eu",
        subject=Subject.user("alice@example.com", ("dev-team", "system:authenticated")),
        warnings=("namespace skypilot-system does not exist; object-store mounting will fail",),
        notes=("ingress checked because ~/.sky/config.yaml sets kubernetes.ports: ingress",),
        fix=FIX_MANIFEST,
    )


def unknown_report() -> Report:
    reqs = _requirements("sky", ("ingress",))
    unknown = {
        "core.pods.get": 'ClusterRole "sky-agg" aggregates roles not in the manifests',
        "core.pods.list": 'ClusterRole "sky-agg" aggregates roles not in the manifests',
        "ingress.ingresses.create": "50% of rules unreadable: line 3, column 7\nsecond line",
    }
    return _report(
        _findings(reqs, unknown=unknown),
        chosen=("ingress",),
        mode="offline",
        method=Method.OFFLINE,
        context=None,
        namespace="sky",
        subject=Subject.service_account("runner", "sky"),
    )


def multi_reports() -> list[Report]:
    return [pass_report(), fail_report()]


def unproven_report() -> Report:
    """A future SkyPilot release: checked against the newest proven one, flagged."""
    version = SkyPilotVersion("0.14.1", "flag", given="0.15.0", proven=False)
    warning = (
        "NOT PROVEN: SkyPilot 0.15.0 (flag) is newer than every proven release and its "
        "Kubernetes code is not recorded as equal to a proven one's: checked against "
        "0.14.1's needs, which it may not match"
    )
    # One rule's checks keep the goldens small: the version is what this case shows.
    findings = tuple(
        f for f in _findings(_requirements("default")) if f.requirement.feature == "core"
    )
    first = findings[0].requirement.rule_id
    return _report(
        tuple(f for f in findings if f.requirement.rule_id == first),
        skypilot=version,
        warnings=(warning,),
        features=("core",),
        required_features=("core",),
    )


def offline_report() -> Report:
    """An offline check whose findings are located in the user's manifests (skycheck.locate):
    a relative path (with a space, URI-encoded in SARIF), a file outside the working
    directory (absolute), and standard input (no path)."""
    reqs = _requirements("team-a", ("object-store-mounting",))
    denied = {"core.pods-exec.create", "core.nodes.list", "object-store-mounting.daemonsets.create"}
    subject = Subject.service_account("sky-sa", "team-a")
    who = subject.username
    rbac_file = "deploy/rbac/sky roles.yaml"

    def where(f: Finding) -> Location:
        r = f.requirement
        if f.decision is Decision.ALLOWED:
            return Location(
                who, None, Basis.GRANT, "file", rbac_file, 14, ("Role", "team-a", "sky-role")
            )
        if r.resource == "nodes":
            return Location(
                who,
                None,
                Basis.ROLE,
                "file",
                "/srv/shared/nodes.yaml",
                3,
                ("ClusterRole", "", "sky-nodes"),
            )
        if r.feature == "object-store-mounting":
            return Location(
                who,
                None,
                Basis.SERVICE_ACCOUNT,
                "stdin",
                None,
                2,
                ("ServiceAccount", "team-a", "sky-sa"),
            )
        return Location(
            who, None, Basis.RULE, "file", rbac_file, 20, ("Role", "team-a", "sky-role")
        )

    findings = tuple(replace(f, location=where(f)) for f in _findings(reqs, denied))
    return _report(
        findings,
        chosen=("object-store-mounting",),
        mode="offline",
        method=Method.OFFLINE,
        context=None,
        namespace="team-a",
        subject=subject,
    )


CASES: dict[str, Callable[[], Report | list[Report]]] = {
    "pass": pass_report,
    "fail": fail_report,
    "unknown": unknown_report,
    "multi": multi_reports,
    "unproven": unproven_report,
    "offline": offline_report,
}


@pytest.fixture(autouse=True)
def _fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """-o prometheus says when it ran: one fixed time, so renders compare equal."""
    monkeypatch.setattr(prometheus_mod, "_now", lambda: 1_700_000_000.0)


def _render(case: str, fmt: OutputFormat) -> str:
    fix_path = FIX_PATH if case == "fail" else None
    # The multi case stands for several contexts: one fix file (and --context) each.
    return render(CASES[case](), fmt, fix_path=fix_path, fix_per_context=case == "multi")


def _as_list(obj: Report | list[Report]) -> list[Report]:
    return obj if isinstance(obj, list) else [obj]


# --- golden files ------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", list(OutputFormat), ids=lambda f: f.value)
@pytest.mark.parametrize("case", list(CASES))
def test_golden(case: str, fmt: OutputFormat, monkeypatch: pytest.MonkeyPatch) -> None:
    # Goldens must not change with every release.
    monkeypatch.setattr(sarif_mod, "__version__", "0.0.0+golden")
    text = _render(case, fmt)
    path = GOLDEN / f"{case}.{EXT[fmt]}"
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"missing golden {path.name}; run with SKYCHECK_UPDATE_GOLDEN=1"
    assert text == path.read_text(encoding="utf-8"), f"{path.name} differs from the golden"


def test_no_stale_goldens() -> None:
    expected = {f"{c}.{EXT[f]}" for c in CASES for f in OutputFormat}
    present = {p.name for p in GOLDEN.iterdir() if p.is_file()}
    assert present == expected


# --- dispatch ----------------------------------------------------------------------------


def test_every_format_has_a_renderer() -> None:
    assert set(RENDERERS) == set(OutputFormat)
    for fmt in OutputFormat:
        for case in CASES:
            text = _render(case, fmt)
            assert text.endswith("\n") and not text.endswith("\n\n"), (case, fmt)


def test_render_accepts_strings_and_rejects_unknown_formats() -> None:
    r = pass_report()
    assert render(r, "json") == render(r, OutputFormat.JSON)
    with pytest.raises(UsageError, match="known formats: table, json"):
        render(r, "html")


def test_empty_report_list_is_an_error() -> None:
    with pytest.raises(ValueError, match="empty"):
        render([], OutputFormat.JSON)


def test_importing_render_is_cheap() -> None:
    code = (
        "import sys, skycheck.render as r\n"
        "heavy = ['rich', 'yaml', 'xml.etree.ElementTree', 'jsonschema', 'kubernetes']\n"
        "print([m for m in heavy if m in sys.modules])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("fmt", list(OutputFormat), ids=lambda f: f.value)
def test_output_does_not_depend_on_finding_order(fmt: OutputFormat) -> None:
    report = fail_report()
    shuffled = list(report.findings)
    random.Random(7).shuffle(shuffled)
    other = replace(report, findings=tuple(shuffled))
    assert render(other, fmt, fix_path=FIX_PATH) == render(report, fmt, fix_path=FIX_PATH)


# --- JSON and YAML -----------------------------------------------------------------------

CONTRACT_TOP = [
    "schemaVersion",
    "verdict",
    "mode",
    "method",
    "context",
    "namespace",
    "subject",
    "features",
    "checks",
    "warnings",
    "fix",
]
CONTRACT_CHECK = [
    "id",
    "feature",
    "required",
    "verb",
    "group",
    "resource",
    "subresource",
    "namespace",
    "name",
    "decision",
    "reason",
]


def _validator() -> jsonschema.Draft202012Validator:
    schema = report_schema()
    assert schema == json.loads(SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.mark.parametrize("case", list(CASES))
def test_json_validates_against_the_shipped_schema(case: str) -> None:
    doc = json.loads(_render(case, OutputFormat.JSON))
    _validator().validate(doc)


def test_schema_rejects_what_the_contract_forbids() -> None:
    v = _validator()
    doc = json.loads(_render("fail", OutputFormat.JSON))
    bad_decision = json.loads(json.dumps(doc))
    bad_decision["checks"][0]["decision"] = "granted"
    missing_key = json.loads(json.dumps(doc))
    del missing_key["checks"][0]["reason"]
    wrong_version = dict(doc, schemaVersion=2)
    for bad in (bad_decision, missing_key, wrong_version):
        assert not v.is_valid(bad)


def test_json_keeps_the_contract_key_order() -> None:
    doc = json.loads(_render("fail", OutputFormat.JSON))
    assert list(doc)[: len(CONTRACT_TOP)] == CONTRACT_TOP
    assert list(doc["subject"]) == ["kind", "name", "namespace", "username", "groups"]
    assert list(doc["features"][0]) == ["name", "required", "status"]
    for check in doc["checks"]:
        assert list(check)[: len(CONTRACT_CHECK)] == CONTRACT_CHECK


def test_json_values() -> None:
    report = fail_report()
    doc = report_to_dict(report)
    assert doc["schemaVersion"] == 1
    assert doc["verdict"] == "fail"
    assert doc["method"] == "SelfSubjectAccessReview"
    assert doc["subject"] == {
        "kind": "User",
        "name": "alice@example.com",
        "namespace": None,
        "username": "alice@example.com",
        "groups": ["dev-team", "system:authenticated"],
    }
    assert len(doc["checks"]) == len(report.findings) == full_check_count()
    assert len({c["id"] for c in doc["checks"]}) == full_check_count()
    nodes = next(c for c in doc["checks"] if c["id"] == "core.nodes.list")
    assert nodes["namespace"] == "" and nodes["group"] == "" and nodes["decision"] == "denied"
    assert nodes["ruleId"] == "core.nodes" and nodes["required"] is True
    exec_get = next(c for c in doc["checks"] if c["id"] == "core.pods-exec.get")
    assert exec_get["subresource"] == "exec" and exec_get["namespace"] == "default"
    assert doc["fix"] == FIX_MANIFEST
    features = {f["name"]: f for f in doc["features"]}
    assert features["core"] == {"name": "core", "required": True, "status": "fail"}
    assert features["volumes"]["status"] == "pass" and not features["volumes"]["required"]


def test_json_verdict_follows_fail_on() -> None:
    only_optional = _report(_findings(_requirements("default"), {"show-gpus.pods.list"}))
    assert report_to_dict(only_optional)["verdict"] == "pass"
    strict = replace(only_optional, fail_on=FailOn.OPTIONAL)
    assert report_to_dict(strict)["verdict"] == "fail"
    assert report_to_dict(strict)["failOn"] == "optional"


def test_json_multi_form() -> None:
    doc = json.loads(render(multi_reports(), OutputFormat.JSON))
    assert list(doc) == ["schemaVersion", "verdict", "reports"]
    assert doc["verdict"] == "fail"
    assert [r["context"] for r in doc["reports"]] == ["kind-sky", "prod-eu"]
    # A list, even of one, is the multi form; a Report is the single form.
    assert "reports" in json.loads(render([pass_report()], OutputFormat.JSON))
    assert "reports" not in json.loads(render(pass_report(), OutputFormat.JSON))
    unknown_and_pass = json.loads(render([pass_report(), unknown_report()], OutputFormat.JSON))
    assert unknown_and_pass["verdict"] == "unknown"


@pytest.mark.parametrize("case", list(CASES))
def test_yaml_is_the_json_document(case: str) -> None:
    assert yaml.safe_load(_render(case, OutputFormat.YAML)) == json.loads(
        _render(case, OutputFormat.JSON)
    )


def test_yaml_writes_the_fix_as_a_block() -> None:
    text = _render("fail", OutputFormat.YAML)
    assert "fix: |\n  apiVersion: rbac.authorization.k8s.io/v1\n" in text


# --- JUnit -------------------------------------------------------------------------------


def _junit(reports: Report | list[Report]) -> ET.Element:
    return ET.fromstring(render(reports, OutputFormat.JUNIT).encode())


def _gating(report: Report, f: Finding) -> bool:
    if f.decision is Decision.ALLOWED:
        return False
    if report.fail_on is FailOn.NEVER:
        return f.decision is Decision.UNKNOWN
    return report.fail_on is FailOn.OPTIONAL or f.requirement.required


@pytest.mark.parametrize("fail_on", list(FailOn), ids=lambda f: f.value)
@pytest.mark.parametrize("case", list(CASES))
def test_junit_counts(case: str, fail_on: FailOn) -> None:
    reports = [replace(r, fail_on=fail_on) for r in _as_list(CASES[case]())]
    root = _junit(reports if case == "multi" else reports[0])
    cases = root.findall("./testsuite/testcase")
    findings = [(r, f) for r in reports for f in r.findings]
    assert len(cases) == len(findings)
    failures = sum(f.decision is Decision.DENIED and _gating(r, f) for r, f in findings)
    skipped = sum(f.decision is Decision.DENIED and not _gating(r, f) for r, f in findings)
    errors = sum(f.decision is Decision.UNKNOWN for _, f in findings)
    assert len(root.findall("./testsuite/testcase/failure")) == failures
    assert len(root.findall("./testsuite/testcase/skipped")) == skipped
    assert len(root.findall("./testsuite/testcase/error")) == errors
    assert root.get("tests") == str(len(findings))
    assert root.get("failures") == str(failures)
    assert root.get("errors") == str(errors)
    assert root.get("skipped") == str(skipped)
    suites = root.findall("./testsuite")
    assert len(suites) == sum(len(r.features) for r in reports)
    for suite in suites:
        assert suite.get("tests") == str(len(suite.findall("testcase")))
        assert suite.get("failures") == str(len(suite.findall("testcase/failure")))
        assert suite.get("errors") == str(len(suite.findall("testcase/error")))


def test_junit_names_and_bodies() -> None:
    root = _junit(fail_report())
    core = root.find("./testsuite[@name='core']")
    assert core is not None
    case = core.find("./testcase[@name='core.pods-exec.create: create pods/exec -n default']")
    assert case is not None and case.get("classname") == "core"
    failure = case.find("failure")
    assert failure is not None and failure.get("type") == "denied"
    assert "why: Setup, file sync" in (failure.text or "")
    assert "breaks: sky launch stops during setup" in (failure.text or "")
    skipped = root.find("./testsuite[@name='show-gpus']/testcase/skipped")
    assert skipped is not None
    assert (skipped.get("message") or "").startswith(
        "not gating (optional feature): missing list pods"
    )


def test_junit_unknown_is_an_error_even_when_optional() -> None:
    reqs = _requirements("default")
    report = _report(_findings(reqs, unknown={"volumes.storageclasses.get": "timeout"}))
    root = _junit(report)
    case = root.find("./testsuite[@name='volumes']/testcase/error/..")
    assert case is not None
    error = case.find("error")
    assert error is not None and "optional" in (error.get("message") or "")
    assert not root.findall(".//skipped")


def test_junit_multi_suite_names() -> None:
    root = _junit(multi_reports())
    names = [s.get("name") for s in root.findall("./testsuite")]
    assert "kind-sky/core" in names and "prod-eu/core" in names
    assert len(names) == len(set(names))


# --- SARIF -------------------------------------------------------------------------------


def _sarif(reports: Report | list[Report]) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(render(reports, OutputFormat.SARIF))
    return doc


@pytest.mark.parametrize("case", list(CASES))
def test_sarif_structure(case: str) -> None:
    obj = CASES[case]()
    reports = _as_list(obj)
    doc = _sarif(obj)
    assert doc["version"] == "2.1.0"
    assert doc["$schema"].endswith("sarif-2.1.0.json")
    assert len(doc["runs"]) == 1
    run = doc["runs"][0]
    driver = run["tool"]["driver"]
    assert driver["name"] == "skycheck" and driver["version"] == skycheck.__version__
    ids = [rule["id"] for rule in driver["rules"]]
    assert len(ids) == len(set(ids)) and ids == sorted(ids)
    catalogue_ids = {r.id for r in load_catalogue().rules}
    assert set(ids) <= catalogue_ids
    checked = {f.requirement.rule_id for r in reports for f in r.findings}
    assert set(ids) == checked
    for rule in driver["rules"]:
        assert rule["shortDescription"]["text"] and rule["fullDescription"]["text"]
        assert "What breaks without it" in rule["help"]["text"]
        assert rule["name"] != rule["id"]
        assert rule["properties"]["feature"] in rule["properties"]["tags"]
    problems = [(r, f) for r in reports for f in r.findings if f.decision is not Decision.ALLOWED]
    assert len(run["results"]) == len(problems)
    fingerprints = set()
    for res in run["results"]:
        assert driver["rules"][res["ruleIndex"]]["id"] == res["ruleId"]
        assert res["level"] == ("error" if res["properties"]["required"] else "warning")
        assert res["message"]["text"]
        loc = res["locations"][0]["physicalLocation"]
        uri = loc["artifactLocation"]["uri"]
        if res["properties"]["input"] == "file":  # the user's manifest and line
            assert not uri.startswith("rules/") and loc["region"]["startLine"] > 1
            assert ("uriBaseId" in loc["artifactLocation"]) != uri.startswith("file:///")
        else:  # live, standard input: the rule's catalogue file
            assert uri == f"rules/{res['properties']['feature']}.yaml"
            assert (rules_dir() / Path(uri).name).is_file()
            assert loc["region"]["startLine"] == 1
        fingerprints.add(res["partialFingerprints"][sarif_mod.FINGERPRINT_KEY])
    assert len(fingerprints) == len(run["results"])
    assert len(run["invocations"]) == len(reports)


def test_sarif_messages_name_verb_resource_namespace() -> None:
    run = _sarif(fail_report())["runs"][0]
    texts = [r["message"]["text"] for r in run["results"]]
    assert any(
        t.startswith("User alice@example.com cannot create pods/exec in namespace default.")
        for t in texts
    )
    assert any("cannot list nodes cluster-wide." in t for t in texts)
    warnings = run["invocations"][0]["toolExecutionNotifications"]
    assert warnings[0]["message"]["text"].startswith("namespace skypilot-system does not exist")


def test_sarif_unknown_results_fail_closed() -> None:
    run = _sarif(unknown_report())["runs"][0]
    unknown = [r for r in run["results"] if r["properties"]["decision"] == "unknown"]
    assert len(unknown) == 3
    for r in unknown:
        assert r["level"] == "error" and "kind" not in r  # kind defaults to "fail"
        assert r["message"]["text"].startswith("Could not check whether")


def test_sarif_fail_on_optional_makes_optional_results_errors() -> None:
    run = _sarif(replace(fail_report(), fail_on=FailOn.OPTIONAL))["runs"][0]
    assert {r["level"] for r in run["results"]} == {"error"}


# --- GitHub workflow commands --------------------------------------------------------------


def test_github_escaping() -> None:
    assert escape_data("100% done\r\nnext: a, b") == "100%25 done%0D%0Anext: a, b"
    assert escape_property("100% done\r\nnext: a, b") == "100%25 done%0D%0Anext%3A a%2C b"
    assert command("error", "a\nb", title="t: x, y") == "::error title=t%3A x%2C y::a%0Ab"
    assert command("notice", "plain") == "::notice::plain"


@pytest.mark.parametrize("case", list(CASES))
def test_github_lines_are_single_commands(case: str) -> None:
    text = _render(case, OutputFormat.GITHUB)
    for line in text.splitlines():
        match = re.match(r"^::(error|warning|notice)(?: ([^:]*))?::.+$", line)
        assert match, line
        props = dict(p.split("=", 1) for p in (match.group(2) or "").split(",") if p)
        assert set(props) <= {"file", "line", "title"}, line
        assert ("file" in props) == ("line" in props) and props.get("line", "1").isdigit()


def test_github_annotations() -> None:
    text = render(unknown_report(), OutputFormat.GITHUB)
    assert "50%25 of rules unreadable: line 3, column 7%0Asecond line" in text
    fail = _render("fail", OutputFormat.GITHUB).splitlines()
    errors = [line for line in fail if line.startswith("::error")]
    warnings = [line for line in fail if line.startswith("::warning")]
    # One per rule: core.nodes, core.pods-exec; show-gpus.pods, ingress.ingressclasses,
    # ingress.nginx-services, daemonsets.
    assert len(errors) == 2 and len(warnings) == 4
    assert any("cannot get%2C create pods/exec -n default::" in line for line in errors)
    assert fail[-1].startswith("::notice title=skycheck FAIL::")
    assert f"To fix: kubectl auth reconcile -f {FIX_PATH}" in fail[-1]


# --- Markdown --------------------------------------------------------------------------------


def test_markdown_escape() -> None:
    assert md_escape("ssh <cluster> | a*b_c") == r"ssh \<cluster\> \| a\*b\_c"
    assert md_escape("run `sky exec` or `a|b`") == r"run `sky exec` or `a\|b`"
    assert md_escape("odd ` quote") == r"odd \` quote"
    assert md_escape("two\nlines") == "two lines"


def _cells(line: str) -> int:
    return len(re.split(r"(?<!\\)\|", line.strip())) - 2


@pytest.mark.parametrize("case", list(CASES))
def test_markdown_tables_are_rectangular(case: str) -> None:
    text = _render(case, OutputFormat.MARKDOWN)
    table: list[str] = []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            table.append(line)
        elif table:
            assert len({_cells(row) for row in table}) == 1, table
            table = []


def test_markdown_content() -> None:
    text = _render("fail", OutputFormat.MARKDOWN)
    assert "**[FAIL]**" in text
    assert "| `core` | required | `pods/exec -n default` | get, create |" in text
    assert f"`kubectl auth reconcile -f {FIX_PATH}`" in text
    assert "```yaml\n" + FIX_MANIFEST + "```" in text
    assert not re.search(r"[\U0001F300-\U0001FAFF\u2600-\u27BF]", text)  # no emoji


# --- table -----------------------------------------------------------------------------------


@pytest.mark.parametrize("width", [60, 80, 100, 140])
def test_table_fits_width_and_has_no_escapes(width: int) -> None:
    for case in CASES:
        text = render(CASES[case](), OutputFormat.TABLE, width=width)
        assert "\x1b" not in text
        for line in text.splitlines():
            assert len(line) <= width, line
            assert line == line.rstrip()


def test_table_color() -> None:
    text = render(fail_report(), OutputFormat.TABLE, color=True)
    assert "\x1b[" in text


def test_table_missing_first_with_why_and_breaks() -> None:
    text = _render("fail", OutputFormat.TABLE)
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("core  required  FAIL"))
    end = next(i for i in range(start + 1, len(lines)) if not lines[i].startswith(" "))
    markers = [line.split()[0] for line in lines[start + 1 : end] if line[2:3].strip()]
    assert markers[:2] == ["MISSING", "MISSING"] and set(markers[2:]) == {"ok"}
    assert "  MISSING  pods/exec -n default: get, create" in text
    assert "why    Setup, file sync" in text
    assert "breaks sky launch stops during setup" in text
    assert lines[-1] == f"To fix: kubectl auth reconcile -f {FIX_PATH}"
    assert "object-store-mounting  optional  FAIL  1 denied of 9 checks" in text
    assert "volumes  optional  PASS  all 6 checks granted" in text


def test_table_multi_summary_lines_first() -> None:
    lines = render(multi_reports(), OutputFormat.TABLE).splitlines()
    assert lines[0] == "skycheck FAIL  2 reports"
    assert lines[1].split()[:2] == ["PASS", "kind-sky"]
    assert lines[2].split()[:2] == ["FAIL", "prod-eu"]


# --- hostile text from the cluster -------------------------------------------------------------

HOSTILE = "\x1b[2J\x1b[31mred[/red] [bold]x[/bold]\x00\x07 a|b <c> 100%,: \r\nnext"


def hostile_report() -> Report:
    reqs = _requirements("default")
    findings = _findings(reqs, {"core.pods.get"}, {"core.pods.list": HOSTILE})
    return replace(
        _report(findings, context="ctx\x1b]0;title\x07"),
        warnings=(HOSTILE,),
        notes=(HOSTILE,),
    )


@pytest.mark.parametrize("fmt", list(OutputFormat), ids=lambda f: f.value)
def test_control_characters_never_reach_the_output(fmt: OutputFormat) -> None:
    text = render(hostile_report(), fmt)
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]", text), repr(text[:200])
    if fmt is OutputFormat.JUNIT:
        ET.fromstring(text.encode())
    if fmt in (OutputFormat.JSON, OutputFormat.YAML):
        # Machine formats keep the exact text, escaped by the serializer.
        doc = json.loads(text) if fmt is OutputFormat.JSON else yaml.safe_load(text)
        assert doc["warnings"] == [HOSTILE]


def test_table_prints_markup_literally() -> None:
    text = render(hostile_report(), OutputFormat.TABLE, width=200)
    assert "red[/red] [bold]x[/bold]" in text


# --- prometheus --------------------------------------------------------------------------


def test_prometheus_parses_with_prometheus_clients_parser() -> None:
    from prometheus_client.parser import text_string_to_metric_families

    families = {
        f.name: f for f in text_string_to_metric_families(_render("fail", OutputFormat.PROMETHEUS))
    }
    report = fail_report()
    verdicts = {s.labels["verdict"]: s.value for s in families["skycheck_verdict"].samples}
    assert verdicts == {"pass": 0.0, "fail": 1.0, "unknown": 0.0}
    assert {s.labels["identity"] for s in families["skycheck_verdict"].samples} == {
        report.subject.username
    }
    missing = {s.labels["feature"]: s.value for s in families["skycheck_missing_checks"].samples}
    for name in report.features:
        denied = [
            f
            for f in report.findings
            if f.requirement.feature == name
            and f.decision.value == "denied"
            and report.profile.gates(f.requirement.effect)
        ]
        assert missing[name] == len(denied), name
    assert sum(missing.values()) > 0
    run = {s.labels["verdict"]: s.value for s in families["skycheck_run_verdict"].samples}
    assert run["fail"] == 1.0
    # No least-privilege audit in these reports: no excess family, never a false "none".
    assert "skycheck_excess_permissions" not in families


def test_prometheus_excess_by_risk_only_when_audited() -> None:
    from skycheck.excess import unknown
    from skycheck.excess_types import Excess, ExcessItem, ExcessState, Grant, Risk
    from skycheck.render.prometheus import _excess_by_risk

    assert _excess_by_risk(fail_report()) is None
    grant = (Grant("Role", "r", "RoleBinding", "b", "default"),)
    items = tuple(
        ExcessItem(v, "", "secrets", "", "default", "", Risk.HIGH, grant, "")
        for v in ("get", "list")
    )
    audited = replace(fail_report(), excess=Excess(ExcessState.COMPLETE, "manifests", items))
    assert _excess_by_risk(audited) == {"critical": 0, "high": 2, "medium": 0, "low": 0}
    # What could not be read is not "no excess": no samples at all.
    assert _excess_by_risk(replace(fail_report(), excess=unknown("no access"))) is None
