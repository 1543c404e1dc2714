"""Fix-it manifests close the gap on the real apiserver, and nothing more.

check -> write the fix -> apply it as admin -> check again -> passes. RBAC
caches lag a moment behind writes, so re-checks retry with a bounded backoff.
Minimality: dropping any single rule of a fix makes the re-check fail again.
"""

from __future__ import annotations

import json
import time

import pytest
import yaml

from skycheck.cli import run
from tests.integration._scenarios import scenario

pytestmark = pytest.mark.cluster

STARTS = (
    "nothing",
    "skypilot-system-short-snippet",
    "wrong-namespace",
    "resource-names-only",
    "pods-star",
)


@pytest.fixture(scope="module", autouse=True)
def system_namespaces(cluster):
    for name in ("skypilot-system", "ingress-nginx"):
        cluster.create_namespace(name, exist_ok=True)


def _check(cluster, ns, capsys, *extra):
    code = run(
        [
            "--kubeconfig",
            str(cluster.admin_kubeconfig),
            "--sa",
            "sky-sa",
            "-n",
            ns,
            "--all-features",
            "-o",
            "json",
            *extra,
        ]
    )
    return code, json.loads(capsys.readouterr().out)


def _eventually(cluster, ns, capsys, want_code, attempts=12):
    """Re-check until the exit code is ``want_code`` (RBAC cache lag), bounded."""
    code, report = None, None
    for i in range(attempts):
        code, report = _check(cluster, ns, capsys)
        if code == want_code:
            return report
        time.sleep(min(0.1 * 2**i, 1.0))
    missing = [c["id"] for c in report["checks"] if c["decision"] != "allowed"]
    raise AssertionError(f"exit {code}, wanted {want_code}; not allowed: {missing}")


@pytest.mark.parametrize("start", STARTS)
def test_check_fix_apply_recheck_passes(cluster, ns, start, tmp_path, capsys):
    cluster.apply(scenario(start, ns))
    fix = tmp_path / "fix.yaml"
    code, report = _check(cluster, ns, capsys, "--fix", str(fix))
    assert code == 1
    assert report["fix"] == fix.read_text()
    docs = [d for d in yaml.safe_load_all(fix.read_text()) if d]
    granted = {
        (r, v)
        for d in docs
        for rule in d.get("rules", [])
        for r in rule["resources"]
        for v in rule["verbs"]
    }
    denied = {
        (c["resource"] + (f"/{c['subresource']}" if c["subresource"] else ""), c["verb"])
        for c in report["checks"]
        if c["decision"] == "denied"
    }
    allowed = {
        (
            c["resource"] + (f"/{c['subresource']}" if c["subresource"] else ""),
            c["verb"],
            c["namespace"],
        )
        for c in report["checks"]
        if c["decision"] == "allowed"
    }
    assert granted <= denied | {(r, v) for r, v, _ in allowed}
    for d in docs:
        for rule in d.get("rules", []):
            assert "*" not in rule["verbs"] and "*" not in rule["resources"]
    dry = cluster.kubectl("apply", "--dry-run=server", "-f", str(fix))
    assert dry.returncode == 0, dry.stderr
    cluster.apply(fix)
    after = _eventually(cluster, ns, capsys, 0)
    assert after["verdict"] == "pass" and after["fix"] is None


def _roles(docs):
    return [(i, j) for i, d in enumerate(docs) for j, _ in enumerate(d.get("rules") or [])]


def test_every_rule_of_a_fix_is_needed(cluster, ns, tmp_path, capsys):
    cluster.apply(scenario("nothing", ns))
    fix = tmp_path / "fix.yaml"
    code, _ = _check(cluster, ns, capsys, "--fix", str(fix))
    assert code == 1
    docs = [d for d in yaml.safe_load_all(fix.read_text()) if d]
    assert len(_roles(docs)) >= 5
    for i, j in _roles(docs):
        trimmed = json.loads(json.dumps(docs))
        del trimmed[i]["rules"][j]
        cluster.apply(yaml.safe_dump_all(trimmed))
        _eventually(cluster, ns, capsys, 1)
    cluster.apply(fix)
    _eventually(cluster, ns, capsys, 0)


def test_manifest_command_output_applies_and_passes(cluster, ns, tmp_path, capsys):
    out = tmp_path / "sa.yaml"
    assert (
        run(["manifest", "--sa", "sky-sa", "-n", ns, "--all-features", "--output-file", str(out)])
        == 0
    )
    text = out.read_text()
    assert "kind: ServiceAccount" in text and '"*"' not in text
    dry = cluster.kubectl("apply", "--dry-run=server", "-f", str(out))
    assert dry.returncode == 0, dry.stderr
    cluster.apply(out)
    _eventually(cluster, ns, capsys, 0)
    # Least privilege: what the account holds is exactly SkyPilot's need, read live.
    code, report = _check(cluster, ns, capsys, "--excess")
    assert code == 0 and report["excessSummary"]["state"] == "complete", report["excessSummary"]
    assert report["excess"] == []
