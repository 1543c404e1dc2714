"""Parsing and validation: manifest dicts to :mod:`skycheck.rbac.model` objects.

Accepts exactly what the API server accepts: ``pkg/apis/rbac/validation/validation.go`` and
the v1 defaults in ``pkg/apis/rbac/v1/defaults.go`` (see :func:`parse_object`). Also loads the
packaged bootstrap policy (``skycheck/data/bootstrap-rbac.json``), the only file this package
reads.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from skycheck.names import DNS_SUBDOMAIN, is_dns_subdomain
from skycheck.rbac.model import (
    NAMESPACED_KINDS,
    RBAC_GROUP,
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
)


class InvalidObjectError(ValueError):
    """A manifest object that the API server would refuse (wrong type or invalid value).

    The message starts with the key path, e.g. ``rules[0].verbs must be a list of strings``.
    """


_PATH_SEGMENT_BAD = ("/", "%")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)$")
_LABEL_RULE = (
    "must be 63 characters or less: alphanumerics, '-', '_' or '.', "
    "starting and ending with an alphanumeric"
)


def _label_key_problem(key: str) -> str | None:
    """``validation.IsQualifiedName`` (apimachinery/pkg/util/validation)."""
    prefix, _, name = key.rpartition("/")
    if "/" in key and (not prefix or len(prefix) > 253 or not DNS_SUBDOMAIN.match(prefix)):
        return "prefix must be a DNS subdomain"
    if not name or len(name) > 63 or not _LABEL_NAME.match(name):
        return _LABEL_RULE
    return None


def _label_value_problem(value: str) -> str | None:
    """``validation.IsValidLabelValue``: empty, or a qualified-name part."""
    if value and (len(value) > 63 or not _LABEL_NAME.match(value)):
        return _LABEL_RULE
    return None


def _rbac_name_problem(name: str) -> str | None:
    """``ValidateRBACName`` = ``content.IsPathSegmentName`` (pkg/apis/rbac/validation)."""
    if name in (".", ".."):
        return f"may not be {name!r}"
    for bad in _PATH_SEGMENT_BAD:
        if bad in name:
            return f"may not contain {bad!r}"
    return None


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


# Speed (docs/benchmarks.md): these checks run for every object of a 10,000-object input,
# so the common, valid case takes the shortest way (C-level set and join operations, no
# key path built unless there is an error to report) and every error keeps its message.


def _mapping(value: Any, path: str, *, required: bool = False) -> Mapping[str, Any]:
    if value is None:
        if required:
            raise InvalidObjectError(f"{path} is required")
        return {}
    if not isinstance(value, dict):
        raise InvalidObjectError(f"{path} must be a mapping, not {_type_name(value)}")
    if not all(map(_is_str, value)):
        key = next(k for k in value if not isinstance(k, str))
        raise InvalidObjectError(f"{path} has a non-string key {key!r}")
    return value


_is_str = str.__instancecheck__


def _no_unknown(doc: Mapping[str, Any], allowed: frozenset[str], path: str) -> None:
    # kubectl apply validates strictly by default: an unknown field is an error, and a typo
    # such as ``resourceName`` must not silently widen a grant.
    if doc.keys() <= allowed:
        return
    extra = sorted(set(doc) - allowed)
    where = f"{path}.{extra[0]}" if path else extra[0]
    raise InvalidObjectError(f"{where} is not a known field")


def _string(value: Any, path: str, field: str = "", *, required: bool = False) -> str:
    if field and (value is None or not isinstance(value, str) or (required and not value)):
        path = f"{path}.{field}"  # (a key path is built only for an error)
    if value is None:
        if required:
            raise InvalidObjectError(f"{path} is required")
        return ""
    if not isinstance(value, str):
        raise InvalidObjectError(f"{path} must be a string, not {_type_name(value)}")
    if required and not value:
        raise InvalidObjectError(f"{path} must not be empty")
    return value


def _strings(value: Any, path: str, field: str = "") -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, list):
        try:
            "".join(value)  # a TypeError names no field: only str items (and subclasses) join
        except TypeError:
            pass
        else:
            return tuple(value)
    where = f"{path}.{field}" if field else path
    raise InvalidObjectError(f"{where} must be a list of strings")


def _labels(value: Any, path: str) -> tuple[tuple[str, str], ...]:
    labels = _mapping(value, path)
    for key, val in labels.items():
        if not isinstance(val, str):
            raise InvalidObjectError(
                f"{path}.{key} must be a string, not {_type_name(val)} (quote it in YAML)"
            )
        problem = _label_key_problem(key)
        if problem:
            raise InvalidObjectError(f"{path} key {key!r} {problem}")
        problem = _label_value_problem(val)
        if problem:
            raise InvalidObjectError(f"{path}.{key} value {val!r} {problem}")
    return tuple(sorted(labels.items()))


_RULE_FIELDS = frozenset(("verbs", "apiGroups", "resources", "resourceNames", "nonResourceURLs"))
# Rules already made: equal rules share one object. Inputs repeat rules (every namespace's copy
# of a chart's Role), and fewer live objects also means less for the garbage collector to walk.
# Bounded, so that a long-lived process does not keep every rule it ever read.
_RULES: dict[PolicyRule, PolicyRule] = {}
_RULES_KEPT = 4096


def _rule(value: Any, path: str, *, namespaced: bool) -> PolicyRule:
    doc = _mapping(value, path, required=True)
    _no_unknown(doc, _RULE_FIELDS, path)
    get = doc.get
    rule = PolicyRule(
        verbs=_strings(get("verbs"), path, "verbs"),
        api_groups=_strings(get("apiGroups"), path, "apiGroups"),
        resources=_strings(get("resources"), path, "resources"),
        resource_names=_strings(get("resourceNames"), path, "resourceNames"),
        non_resource_urls=_strings(get("nonResourceURLs"), path, "nonResourceURLs"),
    )
    _validate_rule(rule, path, namespaced=namespaced)
    shared = _RULES.get(rule)
    if shared is None:
        if len(_RULES) >= _RULES_KEPT:
            _RULES.clear()
        shared = _RULES[rule] = rule
    return shared


def _validate_rule(rule: PolicyRule, path: str, *, namespaced: bool) -> None:
    """``ValidatePolicyRule`` (pkg/apis/rbac/validation/validation.go)."""
    if not rule.verbs:
        raise InvalidObjectError(f"{path}.verbs must contain at least one value")
    if rule.non_resource_urls:
        if namespaced:
            raise InvalidObjectError(
                f"{path}.nonResourceURLs: a Role cannot grant non-resource URLs (use a ClusterRole)"
            )
        if rule.api_groups or rule.resources or rule.resource_names:
            raise InvalidObjectError(
                f"{path}.nonResourceURLs: a rule cannot apply to both resources and "
                "non-resource URLs"
            )
        return
    if not rule.api_groups:
        raise InvalidObjectError(
            f'{path}.apiGroups must list at least one group ("" is the core group)'
        )
    if not rule.resources:
        raise InvalidObjectError(f"{path}.resources must list at least one resource")


def _rules(value: Any, path: str, *, namespaced: bool) -> tuple[PolicyRule, ...]:
    if value is None:  # ``rules: null`` is valid (aggregated roles start that way)
        return ()
    if not isinstance(value, list):
        raise InvalidObjectError(f"{path} must be a list, not {_type_name(value)}")
    return tuple(_rule(r, f"{path}[{i}]", namespaced=namespaced) for i, r in enumerate(value))


def _selector(value: Any, path: str) -> LabelSelector:
    doc = _mapping(value, path, required=True)
    _no_unknown(doc, frozenset(("matchLabels", "matchExpressions")), path)
    match_labels = _labels(doc.get("matchLabels"), f"{path}.matchLabels")
    exprs_raw = doc.get("matchExpressions")
    if exprs_raw is not None and not isinstance(exprs_raw, list):
        raise InvalidObjectError(f"{path}.matchExpressions must be a list")
    exprs: list[SelectorRequirement] = []
    for i, raw in enumerate(exprs_raw or ()):
        where = f"{path}.matchExpressions[{i}]"
        item = _mapping(raw, where, required=True)
        _no_unknown(item, frozenset(("key", "operator", "values")), where)
        expr = SelectorRequirement(
            key=_string(item.get("key"), f"{where}.key", required=True),
            operator=_string(item.get("operator"), f"{where}.operator", required=True),
            values=_strings(item.get("values"), f"{where}.values"),
        )
        # ValidateLabelSelectorRequirement (apimachinery/pkg/apis/meta/v1/validation).
        if expr.operator in ("In", "NotIn"):
            if not expr.values:
                raise InvalidObjectError(f"{where}.values must be set for operator {expr.operator}")
        elif expr.operator in ("Exists", "DoesNotExist"):
            if expr.values:
                raise InvalidObjectError(
                    f"{where}.values must be empty for operator {expr.operator}"
                )
        else:
            raise InvalidObjectError(
                f"{where}.operator {expr.operator!r} must be In, NotIn, Exists or DoesNotExist"
            )
        problem = _label_key_problem(expr.key)
        if problem:
            raise InvalidObjectError(f"{where}.key {expr.key!r} {problem}")
        for j, v in enumerate(expr.values):
            problem = _label_value_problem(v)
            if problem:
                raise InvalidObjectError(f"{where}.values[{j}] {v!r} {problem}")
        exprs.append(expr)
    return LabelSelector(match_labels, tuple(exprs))


def _aggregation(value: Any, path: str) -> tuple[LabelSelector, ...] | None:
    if value is None:
        return None
    doc = _mapping(value, path)
    _no_unknown(doc, frozenset(("clusterRoleSelectors",)), path)
    raw = doc.get("clusterRoleSelectors")
    if raw is not None and not isinstance(raw, list):
        raise InvalidObjectError(f"{path}.clusterRoleSelectors must be a list")
    if not raw:
        # ValidateClusterRole: "at least one clusterRoleSelector required".
        raise InvalidObjectError(f"{path}.clusterRoleSelectors must list at least one selector")
    return tuple(_selector(s, f"{path}.clusterRoleSelectors[{i}]") for i, s in enumerate(raw))


_ROLE_REF_FIELDS = frozenset(("apiGroup", "kind", "name"))
_SUBJECT_FIELDS = frozenset(("kind", "apiGroup", "name", "namespace"))


def _role_ref(value: Any, *, cluster: bool) -> RoleRef:
    doc = _mapping(value, "roleRef", required=True)
    _no_unknown(doc, _ROLE_REF_FIELDS, "roleRef")
    # SetDefaults_RoleBinding / SetDefaults_ClusterRoleBinding: empty apiGroup -> rbac group.
    group = _string(doc.get("apiGroup"), "roleRef.apiGroup") or RBAC_GROUP
    kind = _string(doc.get("kind"), "roleRef.kind", required=True)
    name = _string(doc.get("name"), "roleRef.name", required=True)
    if group != RBAC_GROUP:
        raise InvalidObjectError(f"roleRef.apiGroup must be {RBAC_GROUP}, not {group!r}")
    allowed = ("ClusterRole",) if cluster else ("Role", "ClusterRole")
    if kind not in allowed:
        what = (
            "a ClusterRoleBinding can only reference a ClusterRole"
            if cluster
            else ("must be Role or ClusterRole")
        )
        raise InvalidObjectError(f"roleRef.kind {kind!r}: {what}")
    problem = _rbac_name_problem(name)
    if problem:
        raise InvalidObjectError(f"roleRef.name {name!r} {problem}")
    return RoleRef(kind, name, group)


def _subject(value: Any, path: str, *, cluster: bool) -> SubjectRef:
    doc = _mapping(value, path, required=True)
    _no_unknown(doc, _SUBJECT_FIELDS, path)
    kind = _string(doc.get("kind"), path, "kind", required=True)
    name = _string(doc.get("name"), path, "name", required=True)
    namespace = _string(doc.get("namespace"), path, "namespace")
    group = _string(doc.get("apiGroup"), path, "apiGroup")
    # SetDefaults_Subject and ValidateRoleBindingSubject (pkg/apis/rbac).
    if kind == "ServiceAccount":
        # ValidateServiceAccountName: a DNS-1123 subdomain.
        if not is_dns_subdomain(name):
            raise InvalidObjectError(
                f"{path}.name {name!r} must be a lowercase RFC 1123 subdomain "
                "(a ServiceAccount name)"
            )
        if group:
            raise InvalidObjectError(f"{path}.apiGroup must be empty for a ServiceAccount")
        if cluster and not namespace:
            raise InvalidObjectError(
                f"{path}.namespace is required for a ServiceAccount in a ClusterRoleBinding"
            )
    elif kind in ("User", "Group"):
        group = group or RBAC_GROUP
        if group != RBAC_GROUP:
            raise InvalidObjectError(f"{path}.apiGroup must be {RBAC_GROUP} for a {kind}")
    else:
        raise InvalidObjectError(f"{path}.kind {kind!r} must be User, Group or ServiceAccount")
    return SubjectRef(kind, name, namespace, group)


def _subjects(value: Any, *, cluster: bool) -> tuple[SubjectRef, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise InvalidObjectError(f"subjects must be a list, not {_type_name(value)}")
    return tuple(_subject(s, f"subjects[{i}]", cluster=cluster) for i, s in enumerate(value))


_TOP_LEVEL = {
    "Role": frozenset(("apiVersion", "kind", "metadata", "rules")),
    "ClusterRole": frozenset(("apiVersion", "kind", "metadata", "rules", "aggregationRule")),
    "RoleBinding": frozenset(("apiVersion", "kind", "metadata", "subjects", "roleRef")),
    "ClusterRoleBinding": frozenset(("apiVersion", "kind", "metadata", "subjects", "roleRef")),
}


def parse_object(doc: Mapping[str, Any], *, default_namespace: str | None = None) -> RbacObject:
    """Turn one rbac.authorization.k8s.io/v1 object into the model, as the API server would.

    Types are checked strictly (a YAML ``true`` where a string belongs is an error, as in
    kubectl), the v1 defaults are applied, and objects the API server would reject
    (``pkg/apis/rbac/validation/validation.go``) raise :class:`InvalidObjectError`. A
    namespaced object without ``metadata.namespace`` gets ``default_namespace`` (what
    ``kubectl apply`` does with its context namespace); with None it is an error. A
    cluster-scoped object's ``metadata.namespace`` is ignored, as the API server clears it.
    """
    kind = doc.get("kind")
    if not isinstance(kind, str) or kind not in _TOP_LEVEL:
        raise InvalidObjectError(f"kind {kind!r} is not an RBAC kind")
    _no_unknown(doc, _TOP_LEVEL[kind], "")
    meta = _mapping(doc.get("metadata"), "metadata", required=True)
    name = _string(meta.get("name"), "metadata.name", required=True)
    problem = _rbac_name_problem(name)
    if problem:
        raise InvalidObjectError(f"metadata.name {name!r} {problem}")
    labels = _labels(meta.get("labels"), "metadata.labels")
    annotations = _mapping(meta.get("annotations"), "metadata.annotations")
    for key, val in annotations.items():
        if not isinstance(val, str):
            raise InvalidObjectError(f"metadata.annotations.{key} must be a string")
    namespace = ""
    if kind in NAMESPACED_KINDS:
        namespace = _string(meta.get("namespace"), "metadata.namespace")
        if not namespace:
            if default_namespace is None:
                raise InvalidObjectError("metadata.namespace is required")
            namespace = default_namespace
    else:
        _string(meta.get("namespace"), "metadata.namespace")
    if kind == "Role":
        return Role(name, namespace, _rules(doc.get("rules"), "rules", namespaced=True), labels)
    if kind == "ClusterRole":
        return ClusterRole(
            name,
            _rules(doc.get("rules"), "rules", namespaced=False),
            labels,
            _aggregation(doc.get("aggregationRule"), "aggregationRule"),
        )
    if kind == "RoleBinding":
        return RoleBinding(
            name,
            namespace,
            _role_ref(doc.get("roleRef"), cluster=False),
            _subjects(doc.get("subjects"), cluster=False),
            labels,
        )
    return ClusterRoleBinding(
        name,
        _role_ref(doc.get("roleRef"), cluster=True),
        _subjects(doc.get("subjects"), cluster=True),
        labels,
    )


# --- the packaged bootstrap policy -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class BootstrapPolicy:
    """The ClusterRoles, Roles and bindings a fresh kube-apiserver creates for itself."""

    kubernetes_version: str
    source: str
    placeholder: bool
    objects: tuple[RbacObject, ...]


@cache
def bootstrap_policy() -> BootstrapPolicy:
    """Load ``skycheck/data/bootstrap-rbac.json`` (see scripts/gen_bootstrap_rbac.py)."""
    # Next to the package's modules, where importlib.resources.files("skycheck") finds it,
    # without importing importlib.resources (tempfile, shutil, zipfile: 0.015 s).
    data = Path(__file__).resolve().parent.parent / "data" / "bootstrap-rbac.json"
    text = data.read_text("utf-8")
    data = json.loads(text)
    objects = tuple(parse_object(item) for item in data["items"])
    return BootstrapPolicy(
        kubernetes_version=str(data["kubernetesVersion"]),
        source=str(data["source"]),
        placeholder=bool(data.get("placeholder", False)),
        objects=objects,
    )
