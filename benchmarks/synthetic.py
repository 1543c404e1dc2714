"""Synthetic RBAC for the offline benchmark: many subjects, one checked account.

``write_synthetic(path, n)`` writes ``n`` RBAC objects: Roles and RoleBindings
for thousands of unrelated service accounts across 50 namespaces, a few
ClusterRoles and ClusterRoleBindings, and the SkyPilot docs' grants for
``team-0/sky-sa`` (plus extra bindings to it, growing with ``n``) so the
checked subject has work to do. Returns the number of bindings bound to it.
"""

from __future__ import annotations

import json
from pathlib import Path

ROLE = """apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{name: role-{i}, namespace: team-{ns}}}
rules:
- apiGroups: [""]
  resources: [pods, services]
  verbs: [get, list, watch]
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get]
"""
BINDING = """apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: rb-{i}, namespace: team-{ns}}}
subjects:
- {{kind: ServiceAccount, name: user-{i}, namespace: team-{ns}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: role-{i}}}
"""
CLUSTER_ROLE = """apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {{name: cr-{i}}}
rules:
- apiGroups: [""]
  resources: [nodes]
  verbs: [get]
"""
CLUSTER_BINDING = """apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {{name: crb-{i}}}
subjects:
- {{kind: User, name: person-{i}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cr-{i}}}
"""
SKY_BINDING = """apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: sky-extra-{i}, namespace: team-0}}
subjects:
- {{kind: ServiceAccount, name: sky-sa, namespace: team-0}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: role-{j}}}
"""


def write_synthetic(path: Path, n: int) -> int:
    docs_sa = (
        (Path(__file__).resolve().parent.parent / "tests" / "manifests" / "create-sky-sa.yaml")
        .read_text()
        .replace("namespace: default", "namespace: team-0")
    )
    bound_extra = max(1, n // 1000)  # the subject's own bindings grow with the cluster
    parts = [docs_sa]
    count = docs_sa.count("\nkind: ") + docs_sa.startswith("kind: ")
    i = 0
    while count < n - 2 * bound_extra:
        if i % 50 == 49:
            parts += [CLUSTER_ROLE.format(i=i), CLUSTER_BINDING.format(i=i)]
        else:
            parts += [ROLE.format(i=i, ns=i % 50), BINDING.format(i=i, ns=i % 50)]
        count += 2
        i += 1
    for k in range(bound_extra):
        parts.append(SKY_BINDING.format(i=k, j=k * 50))  # roles in team-0
    path.write_text("\n---\n".join(parts))
    return bound_extra + 4  # the docs manifest binds sky-sa four times


def write_kubectl_json(yaml_path: Path, json_path: Path) -> None:
    """The objects of ``yaml_path`` as ``kubectl get ... -o json`` writes them: one ``List``,
    indented by four spaces."""
    import yaml

    with yaml_path.open(encoding="utf-8") as f:
        items = [doc for doc in yaml.load_all(f, Loader=yaml.CSafeLoader) if doc]
    listing = {"apiVersion": "v1", "items": items, "kind": "List", "metadata": {}}
    json_path.write_text(json.dumps(listing, indent=4) + "\n", encoding="utf-8")


def write_audit(path: Path, n: int, holders: int) -> int:
    """A cluster for ``--all-subjects``: ``holders`` SkyPilot service accounts, each set up
    as the docs' create-sky-sa.yaml sets one up (``sky-K`` in ``team-K%50``: its Role,
    ClusterRole and bindings), among unrelated Roles, ClusterRoles and bindings up to ``n``
    RBAC objects in all (every binding names its own subject). Returns the RBAC objects
    written."""
    template = (
        Path(__file__).resolve().parent.parent / "tests" / "manifests" / "create-sky-sa.yaml"
    ).read_text()
    rbac_kinds = ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding")
    docs = template.split("\n---\n")
    # The skypilot-system Namespace and Role are the same for every account: written once.
    shared = [d for d in docs if "name: skypilot-system" in d and "\nkind: RoleBinding" not in d]
    own = [d for d in docs if d not in shared]
    parts = list(shared)
    count = sum(d.count("\nkind: Role") for d in shared)
    for k in range(holders):
        text = "\n---\n".join(own).replace("sky-sa", f"sky-{k}")
        parts.append(text.replace("namespace: default", f"namespace: team-{k % 50}"))
        count += sum(text.count(f"\nkind: {kind}\n") for kind in rbac_kinds)
    i = 0
    while count < n:
        if i % 50 == 49:
            parts += [CLUSTER_ROLE.format(i=i), CLUSTER_BINDING.format(i=i)]
        else:
            parts += [ROLE.format(i=i, ns=i % 50), BINDING.format(i=i, ns=i % 50)]
        count += 2
        i += 1
    path.write_text("\n---\n".join(parts))
    return count
