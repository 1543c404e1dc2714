"""What the full catalogue amounts to, for tests that check "every check was made"."""

from __future__ import annotations

from skycheck.catalogue import bind, load_catalogue


def full_check_count(version: str | None = None) -> int:
    """Checks of every feature for a launcher on SkyPilot's default identity path."""
    catalogue = load_catalogue()
    return len(bind(catalogue, "ns", catalogue.names, catalogue.names, version=version))


# The ClusterRole SkyPilot 0.14.1 makes for its account (sky/templates/kubernetes-ray.yml.j2),
# as RBAC rules: what holding "everything it grants" means for the bind/escalate alternative.
SKYPILOT_CLUSTER_RULES: list[dict[str, object]] = [
    {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list", "watch", "create"]},
    {
        "apiGroups": ["rbac.authorization.k8s.io"],
        "resources": ["clusterroles", "clusterrolebindings"],
        "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"],
    },
    {
        "apiGroups": ["node.k8s.io"],
        "resources": ["runtimeclasses"],
        "verbs": ["get", "list", "watch"],
    },
    {
        "apiGroups": ["networking.k8s.io"],
        "resources": ["ingressclasses"],
        "verbs": ["get", "list", "watch"],
    },
]
