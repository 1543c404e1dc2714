"""Kubernetes RBAC semantics, evaluated offline: the model, parsing, aggregation, the authorizer.

Pure: no network, no ``kubernetes`` import; the only file read is the packaged bootstrap
policy (``skycheck/data/bootstrap-rbac.json``). Every rule of evaluation mirrors the
Kubernetes v1.37 source and cites it. One module per job:

- :mod:`~skycheck.rbac.model`: the rbac/v1 objects as frozen data;
- :mod:`~skycheck.rbac.parse`: manifest dicts to the model, as strictly as the API server
  validates them, and the bootstrap policy;
- :mod:`~skycheck.rbac.matching`: rule and subject matching (``evaluation_helpers.go``,
  ``rule.go``) and RBAC's wording;
- :mod:`~skycheck.rbac.aggregation`: ClusterRole aggregation (kube-controller-manager);
- :mod:`~skycheck.rbac.authorizer`: :class:`RbacState`, the indexed authorizer;
- :mod:`~skycheck.rbac.explain`: the nearest misses for a denial;
- :mod:`~skycheck.rbac.holdings`: every rule a subject holds, per binding (the excess audit).

The names below are the package's public surface.
"""

from __future__ import annotations

from skycheck.rbac.authorizer import AuthzResult, RbacState, Resolved
from skycheck.rbac.explain import explain_denial
from skycheck.rbac.holdings import HeldRules, bypasses_rbac, rules_held
from skycheck.rbac.matching import (
    Request,
    api_group_matches,
    applies_to_user,
    describe_resource,
    describe_user,
    non_resource_url_matches,
    resource_matches,
    resource_name_matches,
    rule_allows,
    verb_matches,
)
from skycheck.rbac.matching import go_quote as _go_quote
from skycheck.rbac.model import (
    NAMESPACED_KINDS,
    RBAC_API_VERSION,
    RBAC_GROUP,
    RBAC_KINDS,
    SYSTEM_MASTERS,
    Binding,
    ClusterRole,
    ClusterRoleBinding,
    LabelSelector,
    PolicyRule,
    RbacObject,
    Role,
    RoleBinding,
    RoleRef,
    SelectorRequirement,
    SubjectRef,
    describe_object,
    object_key,
)
from skycheck.rbac.parse import (
    BootstrapPolicy,
    InvalidObjectError,
    bootstrap_policy,
    parse_object,
)

__all__ = [
    "NAMESPACED_KINDS",
    "RBAC_API_VERSION",
    "RBAC_GROUP",
    "RBAC_KINDS",
    "SYSTEM_MASTERS",
    "AuthzResult",
    "Binding",
    "BootstrapPolicy",
    "ClusterRole",
    "ClusterRoleBinding",
    "HeldRules",
    "InvalidObjectError",
    "LabelSelector",
    "PolicyRule",
    "RbacObject",
    "RbacState",
    "Request",
    "Resolved",
    "Role",
    "RoleBinding",
    "RoleRef",
    "SelectorRequirement",
    "SubjectRef",
    "_go_quote",
    "api_group_matches",
    "applies_to_user",
    "bootstrap_policy",
    "bypasses_rbac",
    "describe_object",
    "describe_resource",
    "describe_user",
    "explain_denial",
    "non_resource_url_matches",
    "object_key",
    "parse_object",
    "resource_matches",
    "resource_name_matches",
    "rule_allows",
    "rules_held",
    "verb_matches",
]
