"""deploy/: the watcher's manifests on the real API server, and its RBAC proven enough."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from skycheck.models import Verdict
from skycheck.render.prometheus import metric_families

ROOT = Path(__file__).resolve().parent.parent.parent
DEPLOY = ROOT / "deploy"


def _documents(name: str) -> list[dict]:
    return [d for d in yaml.safe_load_all((DEPLOY / name).read_text()) if d]


def test_prometheus_rule_alerts_on_metrics_the_watcher_serves():
    (rule,) = _documents("prometheusrule.yaml")
    assert (rule["apiVersion"], rule["kind"]) == ("monitoring.coreos.com/v1", "PrometheusRule")
    served = {f.name for f in metric_families([], 0.0, run_verdict=Verdict.UNKNOWN)}
    served |= {"skycheck_verdict", "skycheck_missing_checks"}
    exprs = [r["expr"] for g in rule["spec"]["groups"] for r in g["rules"]]
    assert any('skycheck_verdict{verdict="fail"}' in e for e in exprs)
    for expr in exprs:
        for name in re.findall(r"\bskycheck_[a-z_]+", expr):
            assert name in served, name


def test_the_checker_role_holds_only_reviews_and_reads():
    verbs = {
        (tuple(rule["apiGroups"]), tuple(rule["resources"]), tuple(rule["verbs"]))
        for doc in _documents("rbac.yaml")
        if doc["kind"] in ("ClusterRole", "Role")
        for rule in doc["rules"]
    }
    assert verbs == {
        (("authorization.k8s.io",), ("subjectaccessreviews",), ("create",)),
        (("",), ("namespaces",), ("get",)),
        (("",), ("serviceaccounts",), ("get",)),
    }


@pytest.mark.cluster
def test_deploy_manifests_apply_and_the_watchers_rbac_is_enough(cluster, tmp_path):
    kubectl = [str(cluster.kubectl_path), "--kubeconfig", str(cluster.admin_kubeconfig)]

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*kubectl, *args], capture_output=True, text=True, check=check)

    try:
        # The namespace and RBAC for real (the proof below needs them), the rest dry-run.
        run("apply", "-f", str(DEPLOY / "namespace.yaml"))
        run("apply", "-f", str(DEPLOY / "rbac.yaml"))
        for name in ("deployment.yaml", "service.yaml"):
            dry = run("apply", "--dry-run=server", "-f", str(DEPLOY / name), check=False)
            assert dry.returncode == 0, dry.stderr
        run("create", "serviceaccount", "sky-sa", "-n", "default", check=False)
        watcher = cluster.write_kubeconfig(
            tmp_path / "watcher.kubeconfig",
            token=cluster.token("skycheck-watch", "skycheck-watcher"),
            user_name="skycheck-watcher",
            namespace="skycheck-watch",
        )
        result = subprocess.run(
            [sys.executable, "-m", "skycheck", "--kubeconfig", str(watcher), "--sa", "sky-sa",
             "-n", "default", "--no-sky-config", "-o", "json"],
            capture_output=True,
            text=True,
            check=False,
        )  # fmt: skip
        assert result.returncode in (0, 1), result.stderr
        report = json.loads(result.stdout)
        assert report["method"] == "SubjectAccessReview"
        assert report["verdict"] in ("pass", "fail")
        assert all(c["decision"] != "unknown" for c in report["checks"])
        assert not any("sky-sa" in w and "cannot" in w for w in report["warnings"]), report
    finally:
        run("delete", "-f", str(DEPLOY / "rbac.yaml"), "--ignore-not-found", check=False)
        run("delete", "namespace", "skycheck-watch", "--wait=false", check=False)
