"""apiserver: SkyPilot's API server Deployment found in rendered manifests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from skycheck.apiserver import find_api_servers
from skycheck.cli import run

CHART = Path(__file__).parent.parent / "manifests" / "helm" / "skypilot-api-server.yaml"


def _docs(text: str) -> list[tuple[dict, str]]:  # type: ignore[type-arg]
    return [(d, f"chart.yaml#{i + 1}") for i, d in enumerate(yaml.safe_load_all(text)) if d]


def test_the_rendered_chart_names_its_account_namespace_and_config() -> None:
    (server,) = find_api_servers(_docs(CHART.read_text()))
    assert (server.name, server.namespace, server.service_account) == (
        "skypilot-api-server",
        "skypilot",
        "skypilot-api-sa",
    )
    assert server.in_cluster and server.config_map == "skypilot-config"
    assert yaml.safe_load(server.config_text or "") == {"kubernetes": {"ports": "ingress"}}
    assert server.source == "chart.yaml#7" and "ConfigMap skypilot-config" in server.config_source
    assert dict(server.env) == {"SKYPILOT_DEV": "false", "SKYPILOT_RELEASE_NAME": "skypilot"}


def test_a_deployment_that_does_not_run_the_api_server_is_not_one() -> None:
    docs = [d for d in _docs(CHART.read_text()) if d[0]["kind"] == "Deployment"]
    container = docs[0][0]["spec"]["template"]["spec"]["containers"][0]
    container["args"] = ["/bin/sh", "-c", "sleep infinity"]
    assert find_api_servers(docs) == ()


def test_without_its_config_map_the_config_is_unknown_and_defaults_are_kept() -> None:
    docs = [d for d in _docs(CHART.read_text()) if d[0]["kind"] == "Deployment"]
    pod = docs[0][0]["spec"]["template"]["spec"]
    del pod["serviceAccountName"]
    pod["automountServiceAccountToken"] = False
    container = pod["containers"][0]
    container["env"].append({"name": "SKYPILOT_IN_CLUSTER_NAMESPACE", "value": "team-a"})
    (server,) = find_api_servers(docs)
    assert server.service_account == "default" and not server.in_cluster
    assert server.config_map == "skypilot-config" and server.config_text is None
    assert ("SKYPILOT_IN_CLUSTER_NAMESPACE", "team-a") in server.env


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    code = run(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_the_api_server_account_is_checked_as_the_in_cluster_launcher(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """No identity flag: the Deployment names the account, its ConfigMap the config
    (ports: ingress makes ingress required), and the pods' account is reported beside it."""
    code, out, _ = _run(["--manifests", str(CHART), "-o", "json"], capsys)
    reports = json.loads(out)["reports"]
    launcher, pods = reports
    assert launcher["subject"]["username"] == "system:serviceaccount:skypilot:skypilot-api-sa"
    assert launcher["namespace"] == "skypilot" and launcher["mode"] == "offline"
    required = {f["name"] for f in launcher["features"] if f["required"]}
    assert {"core", "ingress", "rbac-bootstrap"} <= required
    assert "checked as the in-cluster launcher" in launcher["notes"][0]
    assert any("ConfigMap skypilot-config" in n for n in launcher["notes"])
    assert pods["subject"]["name"] == "skypilot-service-account"
    assert code == (1 if launcher["verdict"] == "fail" else 0)


def test_flags_name_the_identity_over_the_manifests(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(
        ["--manifests", str(CHART), "--sa", "skypilot:skypilot-api-sa", "-o", "json"], capsys
    )
    report = json.loads(out)
    assert "reports" not in report and report["namespace"] == "skypilot"
    assert not any("in-cluster launcher" in n for n in report["notes"])
    assert code in (0, 1)


def test_two_api_servers_or_one_without_a_token_need_an_identity_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = CHART.read_text()
    deployment = "apiVersion: apps/v1\nkind: Deployment" + text.split("kind: Deployment", 1)[1]
    second = deployment.replace("name: skypilot-api-server", "name: skypilot-api-server-2")
    (tmp_path / "two.yaml").write_text(text + "\n---\n" + second)
    code, _, err = _run(["--manifests", str(tmp_path / "two.yaml")], capsys)
    assert code == 2 and "2 SkyPilot API server Deployments" in err and err.count("\n") == 1
    (tmp_path / "nt.yaml").write_text(
        text.replace("automountServiceAccountToken: true", "automountServiceAccountToken: false")
    )
    code, _, err = _run(["--manifests", str(tmp_path / "nt.yaml")], capsys)
    assert code == 2 and "automountServiceAccountToken: false" in err
    (tmp_path / "rbac.yaml").write_text(text.split("kind: ConfigMap")[0].rsplit("---", 1)[0])
    code, _, err = _run(["--manifests", str(tmp_path / "rbac.yaml")], capsys)
    assert code == 2 and "--manifests needs an identity" in err
