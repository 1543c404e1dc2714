"""A newcomer's first run with a SkyPilot config, on the real apiserver.

The newcomer's kubeconfig user is an ordinary service account: it may edit its own
namespace and, like every authenticated user, create SelfSubjectAccessReviews and
SelfSubjectReviews; it may not create SubjectAccessReviews or
LocalSubjectAccessReviews, impersonate, or read other namespaces. Whatever the
config says about other identities, the caller's own report is made with its real
verdict, the exit code is that verdict's, nothing that was not decided shows as a
pass, and a namespace it may not read is never called missing.
"""

from __future__ import annotations

import json
import re

import pytest
import yaml

from skycheck.cli import run

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("system_namespaces")]

# Everything in its own namespace except impersonation (``edit`` would let it
# impersonate the service accounts there, and so check them).
DEVELOPER = """
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{name: newcomer, namespace: {ns}}}
rules:
- apiGroups: ["", apps, batch, networking.k8s.io, policy, autoscaling, rbac.authorization.k8s.io]
  resources: ["*"]
  verbs: [get, list, watch, create, update, patch, delete, deletecollection]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: newcomer, namespace: {ns}}}
subjects: [{{kind: ServiceAccount, name: newcomer, namespace: {ns}}}]
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: newcomer}}
"""

EXIT = {"pass": 0, "fail": 1, "unknown": 3}


@pytest.fixture
def newcomer(cluster, ns, sa_kubeconfig, tmp_path):
    """The newcomer's kubeconfig: contexts good and bad, both its own, namespace ``ns``."""
    cluster.apply(DEVELOPER.format(ns=ns))
    data = yaml.safe_load(sa_kubeconfig("newcomer").read_text())
    body = dict(data["contexts"][0]["context"], namespace=ns)
    data["contexts"] = [{"name": n, "context": dict(body)} for n in ("good", "bad")]
    data["current-context"] = "good"
    path = tmp_path / "newcomer.kubeconfig"
    path.write_text(yaml.safe_dump(data))
    return path


def _check(capsys, kubeconfig, sky_text, tmp_path, *extra):
    sky = tmp_path / "config.yaml"
    sky.write_text(sky_text)
    fix = tmp_path / "fix.yaml"
    args = ["--kubeconfig", str(kubeconfig), "--sky-config", str(sky), "--fix", str(fix)]
    code = run([*args, "-o", "json", *extra])
    out = capsys.readouterr()
    doc = json.loads(out.out)
    reports = doc.get("reports", [doc])
    fixes = "".join(p.read_text() for p in tmp_path.glob("fix*.yaml"))
    return code, doc, reports, out.err, fixes


def _assert_honest(code, doc, reports, err, fixes):
    """What every run of a newcomer must show, whatever the config."""
    for r in reports:
        decided = [c for c in r["checks"] if c["decision"] != "unknown"]
        assert decided or r["verdict"] != "pass", f"{r['subject']['name']}: pass, nothing decided"
    gating = [r["verdict"] for r in reports if r["gates"]]
    worst = max(gating, key=["pass", "unknown", "fail"].index)
    assert doc["verdict"] == worst and code == EXIT[worst]
    # skypilot-system and ingress-nginx exist; the newcomer may only not read them.
    said = re.findall(r"namespace \S+ does not exist", err + json.dumps(doc))
    assert not said
    assert not [c for c in (c for r in reports for c in r["checks"]) if c["precondition"]]
    docs = [d for d in yaml.safe_load_all(fixes) if d] if fixes else []
    assert not [d for d in docs if d["kind"] == "Namespace"]
    rules = [r for d in docs for r in d.get("rules", [])]
    assert not [r for r in rules if "namespaces" in r["resources"] and "create" in r["verbs"]]
    assert "cannot tell whether namespace skypilot-system exists: the caller may not get" in err
    assert "Traceback" not in err


def _caller(reports, context, ns):
    mine = [
        r
        for r in reports
        if r["context"] == context and r["subject"]["username"].endswith(f":{ns}:newcomer")
    ]
    assert len(mine) == 1, [(r["context"], r["subject"]["username"]) for r in reports]
    return mine[0]


def test_default_identity_with_ingress_reports_the_callers_real_verdict(
    newcomer, ns, tmp_path, capsys
):
    code, doc, reports, err, fixes = _check(
        capsys,
        newcomer,
        "kubernetes:\n  remote_identity: SERVICE_ACCOUNT\n  ports: ingress\n"
        "  allowed_contexts: [good]\n",
        tmp_path,
    )
    _assert_honest(code, doc, reports, err, fixes)
    caller = _caller(reports, "good", ns)
    assert caller["method"] == "SelfSubjectAccessReview" and caller["namespace"] == ns
    required = {f["name"] for f in caller["features"] if f["required"]}
    assert required >= {"core", "rbac-bootstrap", "ingress"}
    # It edits its namespace but may not create cluster roles for SkyPilot's account.
    assert caller["verdict"] == "fail" and code == 1
    core = [c for c in caller["checks"] if c["feature"] == "core" and c["namespace"] == ns]
    assert core and all(c["decision"] != "unknown" for c in core)
    account = next(r for r in reports if r["subject"]["name"] == "skypilot-service-account")
    assert account["gates"] is False and account["verdict"] == "unknown"
    assert all(c["decision"] == "unknown" for c in account["checks"])
    assert account["namespace"] == ns
    assert any("create on subjectaccessreviews" in w for w in account["warnings"])


def test_identity_map_over_two_contexts_answers_for_the_caller_in_each(
    newcomer, ns, tmp_path, capsys
):
    code, doc, reports, err, fixes = _check(
        capsys,
        newcomer,
        "kubernetes:\n  allowed_contexts: [good, bad]\n"
        '  remote_identity:\n    good: sky-sa\n    "*": SERVICE_ACCOUNT\n',
        tmp_path,
    )
    _assert_honest(code, doc, reports, err, fixes)
    assert [(r["context"], r["subject"]["name"]) for r in reports] == [
        ("good", "newcomer"),
        ("good", "sky-sa"),
        ("bad", "newcomer"),
        ("bad", "skypilot-service-account"),
    ]
    for context in ("good", "bad"):
        caller = _caller(reports, context, ns)
        assert caller["namespace"] == ns  # the context's namespace, as SkyPilot uses it
        assert [c for c in caller["checks"] if c["decision"] != "unknown"]
    good, bad = _caller(reports, "good", ns), _caller(reports, "bad", ns)
    # Its real verdicts: it may do everything core needs in its namespace, nothing
    # cluster-wide; in bad it also needs rbac-bootstrap (SkyPilot's own account).
    for caller in (good, bad):
        denied = [c for c in caller["checks"] if c["decision"] == "denied"]
        assert caller["verdict"] == "fail" and denied
        assert not [c for c in denied if c["namespace"] == ns and c["feature"] == "core"]
    assert "rbac-bootstrap" not in {f["name"] for f in good["features"] if f["required"]}
    assert "rbac-bootstrap" in {f["name"] for f in bad["features"] if f["required"]}
    custom, managed = reports[1], reports[3]
    # sky-sa runs SkyPilot's pods: it gates, and unchecked it is unknown, never pass.
    assert custom["gates"] is True and custom["verdict"] == "unknown"
    assert managed["gates"] is False and managed["verdict"] == "unknown"
    assert all(r["namespace"] == ns for r in reports)
    assert code == 1


def test_an_unreadable_namespace_is_not_a_missing_one(newcomer, ns, tmp_path, capsys):
    code, doc, reports, err, fixes = _check(
        capsys,
        newcomer,
        "kubernetes:\n  remote_identity: sky-sa\n",
        tmp_path,
        "-f",
        "object-store-mounting",
    )
    _assert_honest(code, doc, reports, err, fixes)
    caller = _caller(reports, "good", ns)
    pre = {p["namespace"]: p for p in caller["preconditions"]}
    assert pre["skypilot-system"]["state"] == "unknown"
    assert pre["skypilot-system"]["mayCreate"] is None
    # The checks in skypilot-system were asked as usual, and answered.
    system = [c for c in caller["checks"] if c["namespace"] == "skypilot-system"]
    assert system and all(c["decision"] == "denied" for c in system)
    assert "skypilot-system" in fixes  # the grants it lacks there, not a Namespace
