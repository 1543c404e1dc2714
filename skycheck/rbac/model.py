"""The rbac.authorization.k8s.io/v1 objects, as frozen data.

Field by field the types of ``staging/src/k8s.io/api/rbac/v1/types.go``; ``null`` and ``[]``
are the same (Go nil slices), and the v1 defaults are applied by :mod:`skycheck.rbac.parse`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

RBAC_GROUP = "rbac.authorization.k8s.io"
RBAC_API_VERSION = f"{RBAC_GROUP}/v1"
SYSTEM_MASTERS = "system:masters"
NAMESPACED_KINDS = frozenset({"Role", "RoleBinding"})
RBAC_KINDS = frozenset({"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"})


@dataclass(frozen=True, slots=True)
class PolicyRule:
    """rbac/v1 PolicyRule. ``null`` and ``[]`` are the same (Go nil slice)."""

    verbs: tuple[str, ...] = ()
    api_groups: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    resource_names: tuple[str, ...] = ()
    non_resource_urls: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SelectorRequirement:
    """metav1.LabelSelectorRequirement: ``key operator values``."""

    key: str
    operator: str  # In | NotIn | Exists | DoesNotExist
    values: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class LabelSelector:
    """metav1.LabelSelector; matchLabels and matchExpressions are ANDed."""

    match_labels: tuple[tuple[str, str], ...] = ()
    match_expressions: tuple[SelectorRequirement, ...] = ()

    @property
    def valid(self) -> bool:
        """False where ``metav1.LabelSelectorAsSelector`` would return an error."""
        for expr in self.match_expressions:
            if expr.operator in ("In", "NotIn"):
                if not expr.values:
                    return False
            elif expr.operator in ("Exists", "DoesNotExist"):
                if expr.values:
                    return False
            else:
                return False
        return True

    def matches(self, labels: Mapping[str, str]) -> bool:
        """``labels.Requirement.Matches`` for each requirement (apimachinery/pkg/labels)."""
        # An empty selector selects everything (LabelSelectorAsSelector: labels.Everything()).
        for key, value in self.match_labels:
            if labels.get(key) != value:
                return False
        for expr in self.match_expressions:
            present = expr.key in labels
            if expr.operator == "In":
                if not present or labels[expr.key] not in expr.values:
                    return False
            elif expr.operator == "NotIn":
                # A missing label satisfies NotIn.
                if present and labels[expr.key] in expr.values:
                    return False
            elif expr.operator == "Exists":
                if not present:
                    return False
            elif expr.operator == "DoesNotExist":
                if present:
                    return False
            else:
                return False
        return True


@dataclass(frozen=True, slots=True)
class Role:
    name: str
    namespace: str
    rules: tuple[PolicyRule, ...] = ()
    labels: tuple[tuple[str, str], ...] = ()

    kind = "Role"


@dataclass(frozen=True, slots=True)
class ClusterRole:
    name: str
    rules: tuple[PolicyRule, ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    # None: not aggregated. A tuple (even empty): the controller owns ``rules``.
    aggregation: tuple[LabelSelector, ...] | None = None

    kind = "ClusterRole"
    namespace = ""


@dataclass(frozen=True, slots=True)
class SubjectRef:
    """rbac/v1 Subject. ``api_group`` is kept for display only: the authorizer ignores it."""

    kind: str  # User | Group | ServiceAccount
    name: str
    namespace: str = ""
    api_group: str = ""


@dataclass(frozen=True, slots=True)
class RoleRef:
    kind: str  # Role | ClusterRole
    name: str
    api_group: str = RBAC_GROUP


@dataclass(frozen=True, slots=True)
class RoleBinding:
    name: str
    namespace: str
    role_ref: RoleRef
    subjects: tuple[SubjectRef, ...] = ()
    labels: tuple[tuple[str, str], ...] = ()

    kind = "RoleBinding"


@dataclass(frozen=True, slots=True)
class ClusterRoleBinding:
    name: str
    role_ref: RoleRef
    subjects: tuple[SubjectRef, ...] = ()
    labels: tuple[tuple[str, str], ...] = ()

    kind = "ClusterRoleBinding"
    namespace = ""


RbacObject = Role | ClusterRole | RoleBinding | ClusterRoleBinding
Binding = RoleBinding | ClusterRoleBinding


def object_key(obj: RbacObject) -> tuple[str, str, str]:
    """(kind, namespace, name): what makes two objects "the same" to the API server."""
    return (obj.kind, obj.namespace, obj.name)


def describe_object(obj: RbacObject) -> str:
    if isinstance(obj, (Role, RoleBinding)):
        return f"{obj.kind} {obj.name} in namespace {obj.namespace}"
    return f"{obj.kind} {obj.name}"
