"""SkyPilot's API server as rendered manifests show it: its account, namespace and config.

SkyPilot's Helm chart (``charts/skypilot``) renders the API server as a Deployment whose
container runs ``sky api start``, under a ServiceAccount of the release namespace
(``serviceAccountName``), with the SkyPilot config from a ConfigMap mounted at
``/var/skypilot/config`` (key ``config.yaml``) and, when set, ``SKYPILOT_IN_CLUSTER_NAMESPACE``
naming the namespace it launches in. In the cluster it launches as that account through
in-cluster config (when ``automountServiceAccountToken`` is not false). This module finds
those facts in the documents of ``--manifests`` so skycheck can check that identity as the
in-cluster launcher with that config; it reads nothing else of the chart.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

CONFIG_MOUNT = "/var/skypilot/config"
CONFIG_KEY = "config.yaml"
ENV_IN_CLUSTER_NAMESPACE = "SKYPILOT_IN_CLUSTER_NAMESPACE"


@dataclasses.dataclass(frozen=True, slots=True)
class ApiServer:
    """One SkyPilot API server Deployment found in the manifests."""

    name: str
    namespace: str
    service_account: str
    source: str  # where the Deployment is (file and document)
    in_cluster: bool  # its pod gets a service-account token (in-cluster launches)
    env: tuple[tuple[str, str], ...] = ()  # the SkyPilot variables set on its container
    config_map: str | None = None  # the ConfigMap its config comes from
    config_text: str | None = None  # that ConfigMap's config.yaml, when in the manifests
    config_source: str = ""

    def describe(self) -> str:
        return f"SkyPilot API server Deployment {self.namespace}/{self.name} ({self.source})"


def _runs_api_server(container: Mapping[str, Any]) -> bool:
    words = [str(w) for w in (container.get("command") or []) + (container.get("args") or [])]
    return "sky api start" in " ".join(words)


def _config_map_name(pod: Mapping[str, Any], container: Mapping[str, Any]) -> str | None:
    mounts = {
        m.get("name"): m.get("mountPath")
        for m in container.get("volumeMounts") or []
        if isinstance(m, Mapping)
    }
    for volume in pod.get("volumes") or []:
        if not isinstance(volume, Mapping) or mounts.get(volume.get("name")) != CONFIG_MOUNT:
            continue
        config_map = volume.get("configMap")
        if isinstance(config_map, Mapping) and isinstance(config_map.get("name"), str):
            return str(config_map["name"])
    return None


def _skypilot_env(container: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    out = []
    for item in container.get("env") or []:
        if not isinstance(item, Mapping) or "value" not in item:
            continue  # valueFrom: not known from the manifests
        name = str(item.get("name", ""))
        if name.startswith("SKYPILOT_"):
            out.append((name, str(item["value"])))
    return tuple(out)


def find_api_servers(
    documents: Iterable[tuple[Mapping[str, Any], str]], default_namespace: str = "default"
) -> tuple[ApiServer, ...]:
    """Every API server Deployment among ``documents`` ((document, where) pairs), with the
    config of its ConfigMap when that is among the documents too."""
    docs = [(d, where) for d, where in documents if isinstance(d, Mapping)]
    config_maps: dict[tuple[str, str], tuple[Mapping[str, Any], str]] = {}
    for doc, where in docs:
        if doc.get("kind") == "ConfigMap":
            meta = doc.get("metadata") or {}
            key = (str(meta.get("namespace") or default_namespace), str(meta.get("name")))
            config_maps[key] = (doc, where)
    found = []
    for doc, where in docs:
        if doc.get("kind") != "Deployment":
            continue
        meta = doc.get("metadata") or {}
        namespace = str(meta.get("namespace") or default_namespace)
        pod = ((doc.get("spec") or {}).get("template") or {}).get("spec") or {}
        containers = [c for c in pod.get("containers") or [] if isinstance(c, Mapping)]
        server = next((c for c in containers if _runs_api_server(c)), None)
        if server is None:
            continue
        config_map = _config_map_name(pod, server)
        text, text_source = None, ""
        if config_map is not None and (namespace, config_map) in config_maps:
            cm, cm_where = config_maps[(namespace, config_map)]
            value = (cm.get("data") or {}).get(CONFIG_KEY)
            if isinstance(value, str):
                text, text_source = value, f"{cm_where} (ConfigMap {config_map}, {CONFIG_KEY})"
        found.append(
            ApiServer(
                name=str(meta.get("name")),
                namespace=namespace,
                service_account=str(
                    pod.get("serviceAccountName") or pod.get("serviceAccount") or "default"
                ),
                source=where,
                in_cluster=pod.get("automountServiceAccountToken") is not False,
                env=_skypilot_env(server),
                config_map=config_map,
                config_text=text,
                config_source=text_source,
            )
        )
    return tuple(found)
