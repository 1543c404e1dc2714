"""RBAC starting states shared by the live-agreement and fix-it tests.

Each scenario is YAML for one service account ``sky-sa`` in namespace ``{ns}``;
``{ns}`` is filled in per test so every test has its own namespace.
"""

from __future__ import annotations

from pathlib import Path

MANIFESTS = Path(__file__).resolve().parent.parent / "manifests"

# The token user bob as admin of one namespace (the built-in admin ClusterRole).
NAMESPACE_ADMIN = """
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: bob-admin, namespace: {ns}}}
subjects: [{{kind: User, name: bob, apiGroup: rbac.authorization.k8s.io}}]
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: admin}}
"""


def docs_manifest(ns: str) -> str:
    """The SkyPilot docs' create-sky-sa.yaml, moved to namespace ``ns``.

    Cluster-scoped names get the namespace appended so parallel tests never share them.
    """
    text = (MANIFESTS / "create-sky-sa.yaml").read_text()
    text = text.replace("namespace: default", f"namespace: {ns}")
    for name in ("sky-sa-cluster-role-binding", "sky-sa-cluster-role"):
        text = text.replace(f"name: {name} ", f"name: {name}-{ns} ")
        text = text.replace(f"name: {name}\n", f"name: {name}-{ns}\n")
    # The docs put the ingress Role in ingress-nginx; tests cannot share that namespace's
    # objects safely, so each test gets its own copy of the Role there.
    text = text.replace("sky-sa-role-ingress-nginx", f"sky-sa-role-ingress-nginx-{ns}")
    text = text.replace("sky-sa-rolebinding-ingress-nginx", f"sky-sa-rb-ingress-nginx-{ns}")
    text = text.replace("sky-sa-skypilot-system-role-binding", f"sky-sa-system-rb-{ns}")
    return text


SA = """
apiVersion: v1
kind: ServiceAccount
metadata: {{name: sky-sa, namespace: {ns}}}
"""

SCENARIOS: dict[str, str] = {
    "nothing": SA,
    "explicit-verbs": SA
    + """
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{name: explicit, namespace: {ns}}}
rules:
- apiGroups: [""]
  resources: [pods, pods/exec, pods/portforward, services, secrets, events]
  verbs: [get, list, watch, create, update, patch, delete]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: explicit, namespace: {ns}}}
subjects: [{{kind: ServiceAccount, name: sky-sa, namespace: {ns}}}]
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: explicit}}
""",
    "group-binding": SA
    + """
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{name: group-role, namespace: {ns}}}
rules:
- apiGroups: [""]
  resources: [pods, pods/exec]
  verbs: ["*"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: group-rb, namespace: {ns}}}
subjects:
- {{kind: Group, name: "system:serviceaccounts:{ns}", apiGroup: rbac.authorization.k8s.io}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: group-role}}
""",
    "rolebinding-to-clusterrole": SA
    + """
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {{name: "skycheck-test-cr-{ns}"}}
rules:
- apiGroups: [""]
  resources: [pods, services, nodes]
  verbs: [get, list, create]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: cr-rb, namespace: {ns}}}
subjects: [{{kind: ServiceAccount, name: sky-sa}}]
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "skycheck-test-cr-{ns}"}}
""",
    "builtin-edit": SA
    + """
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: edit-rb, namespace: {ns}}}
subjects: [{{kind: ServiceAccount, name: sky-sa, namespace: {ns}}}]
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: edit}}
""",
    "resource-names-only": SA
    + """
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{name: named, namespace: {ns}}}
rules:
- apiGroups: [""]
  resources: [pods, services]
  resourceNames: [head]
  verbs: ["*"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: named, namespace: {ns}}}
subjects: [{{kind: ServiceAccount, name: sky-sa, namespace: {ns}}}]
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: named}}
""",
    "pods-star": SA
    + """
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{name: podstar, namespace: {ns}}}
rules:
- apiGroups: [""]
  resources: ["pods/*", "*/exec"]
  verbs: ["*"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: podstar, namespace: {ns}}}
subjects: [{{kind: ServiceAccount, name: sky-sa, namespace: {ns}}}]
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: podstar}}
""",
    "wrong-namespace": SA
    + """
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{name: elsewhere, namespace: kube-public}}
rules:
- apiGroups: ["*"]
  resources: ["*"]
  verbs: ["*"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: "elsewhere-{ns}", namespace: kube-public}}
subjects: [{{kind: ServiceAccount, name: sky-sa, namespace: {ns}}}]
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: elsewhere}}
""",
    "cluster-admin": SA
    + """
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {{name: "skycheck-test-admin-{ns}"}}
subjects: [{{kind: ServiceAccount, name: sky-sa, namespace: {ns}}}]
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}}
""",
    "skypilot-system-short-snippet": SA
    + """
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{name: "short-snippet-{ns}", namespace: skypilot-system}}
rules:
- apiGroups: ["*"]
  resources: ["apps"]
  verbs: ["daemonsets"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: "short-snippet-{ns}", namespace: skypilot-system}}
subjects: [{{kind: ServiceAccount, name: sky-sa, namespace: {ns}}}]
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: "short-snippet-{ns}"}}
""",
}


def scenario(name: str, ns: str) -> str:
    if name == "docs":
        return docs_manifest(ns)
    return SCENARIOS[name].format(ns=ns)


ALL = ("docs", *SCENARIOS)
