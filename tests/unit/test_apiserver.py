"""apiserver: SkyPilot's API server Deployment found in rendered manifests."""

from __future__ import annotations

from pathlib import Path

import yaml

from skycheck.apiserver import find_api_servers

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
