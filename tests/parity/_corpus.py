"""Setups to resolve with SkyPilot and with skycheck: config x kubeconfig x environment.

Hand-written cases pin each branch of SkyPilot's resolution (first-match
remote_identity maps, the list form, NONE, port-mode case, kind-skypilot,
allowed_contexts and its environment variables, the in-cluster context, HA and
consolidation mode); generated cases combine the same parts at random with a
fixed seed, so a run is reproducible.
"""

from __future__ import annotations

import random
from typing import Any

Case = dict[str, Any]


def kubeconfig(
    current: str | None, contexts: dict[str, str | None], **extra: Any
) -> dict[str, Any]:
    """A kubeconfig with one cluster and one token user; ``contexts``: name -> namespace."""
    doc: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:6443"}}],
        "users": [{"name": "u", "user": {"token": "parity-not-a-secret"}}],
        "contexts": [
            {
                "name": n,
                "context": {"cluster": "c", "user": "u", **({"namespace": ns} if ns else {})},
            }
            for n, ns in contexts.items()
        ],
    }
    if current is not None:
        doc["current-context"] = current
    doc.update(extra)
    return doc


KUBECONFIGS: dict[str, dict[str, Any] | None] = {
    "good-bad": kubeconfig("good", {"good": "s08", "bad": "s08", "prod": None, "dev": "team"}),
    "bad-current": kubeconfig("bad", {"good": None, "bad": "s08", "prod": "p"}),
    "prod-globs": kubeconfig(
        "prod-east", {"prod-east": "pe", "prod-west": None, "dev": "d", "gke_p_z_c1": None}
    ),
    "kind": kubeconfig("kind-skypilot", {"kind-skypilot": None, "good": "s08"}),
    "ssh-current": kubeconfig("ssh-pool", {"ssh-pool": None, "a": "na", "ssh-b": None}),
    "no-current": kubeconfig(None, {"good": "s08", "bad": None}),
    "dangling": kubeconfig("gone", {"good": "s08"}),
    "no-cluster": {
        **kubeconfig("good", {"good": "s08"}),
        "clusters": [],
    },
    "named-in-cluster": kubeconfig("good", {"good": "s08", "in-cluster": "kc-ns"}),
    "none": None,
}

IDENTITIES: list[Any] = [
    None,
    "SERVICE_ACCOUNT",
    "LOCAL_CREDENTIALS",
    "NO_UPLOAD",
    "NONE",
    "none",
    "sky-sa",
    "skypilot-service-account",
    "service_account",
    {"*": "star-sa", "prod": "prod-sa"},
    {"prod": "prod-sa", "*": "star-sa"},
    {"good": "sky-sa", "*": "SERVICE_ACCOUNT"},
    {"prod-*": "prod-sa", "dev": "dev-sa"},
    {"bad": "NO_UPLOAD", "g*": "LOCAL_CREDENTIALS"},
    {"Good": "upper-sa", "*": "lower-sa"},
    [{"*": "list-sa"}],
]
PORTS: list[str | None] = [
    None,
    "ingress",
    "Ingress",
    "INGRESS",
    "podip",
    "loadbalancer",
    "LoadBalancer",
]
ALLOWED: list[Any] = [
    None,
    "all",
    ["good"],
    ["good", "missing"],
    ["bad", "good", "bad"],
    ["ssh-pool", "a"],
    [],
    ["in-cluster"],
    ["mine", "prod-west"],
]
NAMESPACES: list[str | None] = [None, "team-ns"]
CONTEXT_CONFIGS: list[dict[str, Any] | None] = [
    None,
    {"bad": {"namespace": "bad-ns", "remote_identity": "bad-sa"}},
    {"good": {"ports": "podip"}, "prod-east": {"remote_identity": "LOCAL_CREDENTIALS"}},
    {"in-cluster": {"namespace": "ic-cfg"}, "mine": {"ports": "ingress"}},
]
CONTROLLERS: list[dict[str, Any]] = [
    {},
    {"jobs": {"controller": {"high_availability": True}}},
    {"serve": {"controller": {"high_availability": True}}},
    {"jobs": {"controller": {"high_availability": True, "consolidation_mode": True}}},
    {"serve": {"controller": {"consolidation_mode": True}}},
    {"jobs": {"controller": {"consolidation_mode": True}}},
]
ENVS: list[dict[str, str]] = [
    {},
    {"SKYPILOT_ALLOW_ALL_KUBERNETES_CONTEXTS": "true"},
    {"SKYPILOT_ALLOW_ALL_KUBERNETES_CONTEXTS": "1"},
    {"SKYPILOT_ALLOW_ALL_KUBERNETES_CONTEXTS": "yes"},
    {"SKYPILOT_ALL_KUBERNETES_CONTEXTS_INCLUDES_IN_CLUSTER": "false"},
    {"SKYPILOT_ALL_KUBERNETES_CONTEXTS_INCLUDES_IN_CLUSTER": "no"},
    {"SKYPILOT_IN_CLUSTER_NAMESPACE": "env-ns"},
    {"SKYPILOT_IN_CLUSTER_CONTEXT_NAME": "mine"},
    {
        "SKYPILOT_ALLOW_ALL_KUBERNETES_CONTEXTS": "TRUE",
        "SKYPILOT_ALL_KUBERNETES_CONTEXTS_INCLUDES_IN_CLUSTER": "0",
    },
]
IN_CLUSTER: list[dict[str, Any] | None] = [None, {"namespace": "pod-ns"}, {"namespace": None}]


def _yaml(value: Any, indent: int = 0) -> str:
    """Block YAML for plain data (keys quoted, so globs and keywords stay strings)."""
    pad = " " * indent
    if isinstance(value, dict):
        if not value:
            return "{}"
        lines = []
        for k, v in value.items():
            body = _yaml(v, indent + 2)
            if isinstance(v, (dict, list)) and v:
                lines.append(f'{pad}"{k}":\n{body}')
            else:
                lines.append(f'{pad}"{k}": {body}')
        return "\n".join(lines)
    if isinstance(value, list):
        if not value:
            return "[]"
        return "\n".join(f"{pad}- " + _yaml(v, indent + 2).lstrip() for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return f'"{value}"'


def config_text(
    identity: Any = None,
    ports: str | None = None,
    allowed: Any = None,
    namespace: str | None = None,
    context_configs: dict[str, Any] | None = None,
    controllers: dict[str, Any] | None = None,
) -> str:
    k8s: dict[str, Any] = {}
    if identity is not None:
        k8s["remote_identity"] = identity
    if ports is not None:
        k8s["ports"] = ports
    if allowed is not None:
        k8s["allowed_contexts"] = allowed
    if namespace is not None:
        k8s["namespace"] = namespace
    if context_configs:
        k8s["context_configs"] = context_configs
    doc: dict[str, Any] = {}
    if k8s:
        doc["kubernetes"] = k8s
    doc.update(controllers or {})
    return (_yaml(doc) + "\n") if doc else ""


def case(
    case_id: str,
    kube: str,
    env: dict[str, str] | None = None,
    in_cluster: dict[str, Any] | None = None,
    **config: Any,
) -> Case:
    text = config_text(**config)
    controllers = config.get("controllers") or {}
    signal = bool(controllers.get("jobs", {}).get("controller", {}).get("consolidation_mode"))
    return {
        "id": case_id,
        "config": text,
        "kubeconfig": KUBECONFIGS[kube],
        "env": env or {},
        "in_cluster": in_cluster,
        "jobs_consolidation_signal": signal,
    }


def hand_written() -> list[Case]:
    """One case per branch named in the config-resolution leads, and a few found on the way."""
    ic = {"namespace": "pod-ns"}
    return [
        case(
            "new-user-sa-ingress",
            "good-bad",
            identity="SERVICE_ACCOUNT",
            ports="ingress",
            allowed=["good"],
        ),
        case(
            "map-good-star",
            "good-bad",
            identity={"good": "sky-sa", "*": "SERVICE_ACCOUNT"},
            allowed=["good", "bad"],
        ),
        case("map-star-first", "good-bad", identity={"*": "a-sa", "prod": "b-sa"}, allowed="all"),
        case("map-exact-first", "good-bad", identity={"prod": "b-sa", "*": "a-sa"}, allowed="all"),
        case("map-no-match", "prod-globs", identity={"prod-*": "p-sa"}, allowed="all"),
        case("map-empty", "good-bad", identity={}),
        case("map-case", "good-bad", identity={"Good": "upper-sa", "good": "lower-sa"}),
        case("list-form", "good-bad", identity=[{"*": "list-sa"}]),
        case("none-keyword", "good-bad", identity="NONE"),
        case("none-lowercase", "good-bad", identity="none"),
        case("lowercase-keyword", "good-bad", identity="service_account"),
        case("ports-Ingress", "good-bad", ports="Ingress"),
        case("ports-INGRESS-kind", "kind", ports="INGRESS", allowed="all"),
        case("ports-podip-kind", "kind", ports="podip", allowed="all"),
        case(
            "ports-context",
            "good-bad",
            ports="podip",
            allowed="all",
            context_configs={"bad": {"ports": "ingress"}},
        ),
        case("allow-all-env", "good-bad", env={"SKYPILOT_ALLOW_ALL_KUBERNETES_CONTEXTS": "true"}),
        case(
            "allow-all-env-ignored-by-list",
            "good-bad",
            allowed=["bad"],
            env={"SKYPILOT_ALLOW_ALL_KUBERNETES_CONTEXTS": "1"},
        ),
        case("ssh-current-in-cluster", "ssh-current", in_cluster=ic),
        case("ssh-current-no-in-cluster", "ssh-current"),
        case("no-kubeconfig-in-cluster", "none", in_cluster=ic),
        case(
            "no-kubeconfig-in-cluster-env-ns",
            "none",
            in_cluster=ic,
            env={"SKYPILOT_IN_CLUSTER_NAMESPACE": "env-ns"},
        ),
        case("in-cluster-no-ns-file", "none", in_cluster={"namespace": None}),
        case(
            "in-cluster-renamed",
            "none",
            in_cluster=ic,
            env={"SKYPILOT_IN_CLUSTER_CONTEXT_NAME": "mine"},
        ),
        case(
            "in-cluster-excluded",
            "good-bad",
            in_cluster=ic,
            allowed="all",
            env={"SKYPILOT_ALL_KUBERNETES_CONTEXTS_INCLUDES_IN_CLUSTER": "false"},
        ),
        case(
            "in-cluster-excluded-but-listed",
            "good-bad",
            in_cluster=ic,
            allowed=["in-cluster"],
            env={"SKYPILOT_ALL_KUBERNETES_CONTEXTS_INCLUDES_IN_CLUSTER": "false"},
        ),
        case("in-cluster-beside-kubeconfig", "good-bad", in_cluster=ic, allowed="all"),
        case("in-cluster-name-clash", "named-in-cluster", in_cluster=ic, allowed="all"),
        case("in-cluster-name-clash-no-token", "named-in-cluster", allowed="all"),
        case(
            "env-ns-not-for-kubeconfig",
            "good-bad",
            allowed="all",
            env={"SKYPILOT_IN_CLUSTER_NAMESPACE": "env-ns"},
        ),
        case("no-current-context", "no-current", allowed="all"),
        case("dangling-current-context", "dangling", allowed="all"),
        case("current-context-without-cluster", "no-cluster", allowed="all"),
        case(
            "namespace-precedence",
            "good-bad",
            allowed="all",
            namespace="team-ns",
            context_configs={"bad": {"namespace": "bad-ns"}},
        ),
        case(
            "ha-jobs", "good-bad", controllers={"jobs": {"controller": {"high_availability": True}}}
        ),
        case(
            "ha-consolidation",
            "good-bad",
            controllers={"serve": {"controller": {"consolidation_mode": True}}},
        ),
        case(
            "ha-jobs-consolidation",
            "good-bad",
            controllers={"jobs": {"controller": {"consolidation_mode": True}}},
        ),
        case("duplicate-allowed", "good-bad", allowed=["bad", "good", "bad"]),
        case(
            "context-identity-over-map",
            "good-bad",
            allowed="all",
            identity={"*": "star-sa"},
            context_configs={"bad": {"remote_identity": "bad-sa"}},
        ),
        {
            **case("skypilot-config-env", "good-bad"),
            "files": {"alt/sky.yaml": config_text(identity="alt-sa")},
            "env": {"SKYPILOT_CONFIG": "$HOME/alt/sky.yaml"},
        },
        {
            **case("skypilot-config-env-missing", "good-bad"),
            "env": {"SKYPILOT_CONFIG": "$HOME/missing.yaml"},
        },
        {
            **case("global-config-env", "good-bad", identity="ignored-sa"),
            "files": {"g/sky.yaml": config_text(identity="global-sa")},
            "env": {"SKYPILOT_GLOBAL_CONFIG": "$HOME/g/sky.yaml"},
        },
        {
            **case("global-config-env-missing", "good-bad"),
            "env": {"SKYPILOT_GLOBAL_CONFIG": "$HOME/none.yaml"},
        },
    ]


def generated(count: int, seed: int = 20261130) -> list[Case]:
    """``count`` random combinations of the parts above (deterministic for a seed)."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        out.append(
            case(
                f"gen-{i:03d}",
                rng.choice(list(KUBECONFIGS)),
                env=rng.choice(ENVS),
                in_cluster=rng.choice(IN_CLUSTER),
                identity=rng.choice(IDENTITIES),
                ports=rng.choice(PORTS),
                allowed=rng.choice(ALLOWED),
                namespace=rng.choice(NAMESPACES),
                context_configs=rng.choice(CONTEXT_CONFIGS),
                controllers=rng.choice(CONTROLLERS),
            )
        )
    return out


def corpus(generated_count: int = 260) -> list[Case]:
    return [*hand_written(), *generated(generated_count)]
