"""Kubernetes RBAC semantics, evaluated offline: the model, aggregation and the authorizer.

Pure: no network, no ``kubernetes`` import; the only file read is the packaged
bootstrap policy (``skycheck/data/bootstrap-rbac.json``). Every rule of evaluation
mirrors the Kubernetes v1.37 source and cites it:

- rule matching: ``pkg/apis/rbac/v1/evaluation_helpers.go`` (VerbMatches, APIGroupMatches,
  ResourceMatches, ResourceNameMatches, NonResourceURLMatches) and ``RuleAllows`` in
  ``plugin/pkg/auth/authorizer/rbac/rbac.go``;
- binding resolution: ``VisitRulesFor``, ``GetRoleReferenceRules``, ``appliesToUser`` and the
  describers in ``pkg/registry/rbac/validation/rule.go``;
- aggregation: ``pkg/controller/clusterroleaggregation/clusterroleaggregation_controller.go``;
- what the API server accepts at all: ``pkg/apis/rbac/validation/validation.go`` and the v1
  defaults in ``pkg/apis/rbac/v1/defaults.go`` (see :func:`parse_object`);
- ``system:masters``: ``authorizerfactory.NewPrivilegedGroups`` placed ahead of every configured
  authorizer in ``pkg/kubeapiserver/authorizer/reload.go``.

Lookups are indexed by subject (user name, group, service account), so one decision costs
time proportional to the bindings that name the subject, not to the size of the manifests.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

RBAC_GROUP = "rbac.authorization.k8s.io"
RBAC_API_VERSION = f"{RBAC_GROUP}/v1"
SYSTEM_MASTERS = "system:masters"
SA_USER_PREFIX = "system:serviceaccount:"
BOOTSTRAP_LABEL = ("kubernetes.io/bootstrapping", "rbac-defaults")
NAMESPACED_KINDS = frozenset({"Role", "RoleBinding"})
RBAC_KINDS = frozenset({"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"})

# --- the model ------------------------------------------------------------------------


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


# --- parsing dicts (manifests, kubectl JSON) into the model ----------------------------


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
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def _label_key_problem(key: str) -> str | None:
    """``validation.IsQualifiedName`` (apimachinery/pkg/util/validation)."""
    prefix, _, name = key.rpartition("/")
    if "/" in key and (not prefix or len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
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


def _mapping(value: Any, path: str, *, required: bool = False) -> Mapping[str, Any]:
    if value is None:
        if required:
            raise InvalidObjectError(f"{path} is required")
        return {}
    if not isinstance(value, dict):
        raise InvalidObjectError(f"{path} must be a mapping, not {_type_name(value)}")
    for key in value:
        if not isinstance(key, str):
            raise InvalidObjectError(f"{path} has a non-string key {key!r}")
    return value


def _no_unknown(doc: Mapping[str, Any], allowed: Iterable[str], path: str) -> None:
    # kubectl apply validates strictly by default: an unknown field is an error, and a typo
    # such as ``resourceName`` must not silently widen a grant.
    extra = sorted(set(doc) - set(allowed))
    if extra:
        where = f"{path}.{extra[0]}" if path else extra[0]
        raise InvalidObjectError(f"{where} is not a known field")


def _string(value: Any, path: str, *, required: bool = False) -> str:
    if value is None:
        if required:
            raise InvalidObjectError(f"{path} is required")
        return ""
    if not isinstance(value, str):
        raise InvalidObjectError(f"{path} must be a string, not {_type_name(value)}")
    if required and not value:
        raise InvalidObjectError(f"{path} must not be empty")
    return value


def _strings(value: Any, path: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidObjectError(f"{path} must be a list of strings")
    return tuple(value)


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


def _rule(value: Any, path: str, *, namespaced: bool) -> PolicyRule:
    doc = _mapping(value, path, required=True)
    _no_unknown(doc, ("verbs", "apiGroups", "resources", "resourceNames", "nonResourceURLs"), path)
    rule = PolicyRule(
        verbs=_strings(doc.get("verbs"), f"{path}.verbs"),
        api_groups=_strings(doc.get("apiGroups"), f"{path}.apiGroups"),
        resources=_strings(doc.get("resources"), f"{path}.resources"),
        resource_names=_strings(doc.get("resourceNames"), f"{path}.resourceNames"),
        non_resource_urls=_strings(doc.get("nonResourceURLs"), f"{path}.nonResourceURLs"),
    )
    # ValidatePolicyRule (pkg/apis/rbac/validation/validation.go).
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
        return rule
    if not rule.api_groups:
        raise InvalidObjectError(
            f'{path}.apiGroups must list at least one group ("" is the core group)'
        )
    if not rule.resources:
        raise InvalidObjectError(f"{path}.resources must list at least one resource")
    return rule


def _rules(value: Any, path: str, *, namespaced: bool) -> tuple[PolicyRule, ...]:
    if value is None:  # ``rules: null`` is valid (aggregated roles start that way)
        return ()
    if not isinstance(value, list):
        raise InvalidObjectError(f"{path} must be a list, not {_type_name(value)}")
    return tuple(_rule(r, f"{path}[{i}]", namespaced=namespaced) for i, r in enumerate(value))


def _selector(value: Any, path: str) -> LabelSelector:
    doc = _mapping(value, path, required=True)
    _no_unknown(doc, ("matchLabels", "matchExpressions"), path)
    match_labels = _labels(doc.get("matchLabels"), f"{path}.matchLabels")
    exprs_raw = doc.get("matchExpressions")
    if exprs_raw is not None and not isinstance(exprs_raw, list):
        raise InvalidObjectError(f"{path}.matchExpressions must be a list")
    exprs: list[SelectorRequirement] = []
    for i, raw in enumerate(exprs_raw or ()):
        where = f"{path}.matchExpressions[{i}]"
        item = _mapping(raw, where, required=True)
        _no_unknown(item, ("key", "operator", "values"), where)
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
    _no_unknown(doc, ("clusterRoleSelectors",), path)
    raw = doc.get("clusterRoleSelectors")
    if raw is not None and not isinstance(raw, list):
        raise InvalidObjectError(f"{path}.clusterRoleSelectors must be a list")
    if not raw:
        # ValidateClusterRole: "at least one clusterRoleSelector required".
        raise InvalidObjectError(f"{path}.clusterRoleSelectors must list at least one selector")
    return tuple(_selector(s, f"{path}.clusterRoleSelectors[{i}]") for i, s in enumerate(raw))


def _role_ref(value: Any, *, cluster: bool) -> RoleRef:
    doc = _mapping(value, "roleRef", required=True)
    _no_unknown(doc, ("apiGroup", "kind", "name"), "roleRef")
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
    _no_unknown(doc, ("kind", "apiGroup", "name", "namespace"), path)
    kind = _string(doc.get("kind"), f"{path}.kind", required=True)
    name = _string(doc.get("name"), f"{path}.name", required=True)
    namespace = _string(doc.get("namespace"), f"{path}.namespace")
    group = _string(doc.get("apiGroup"), f"{path}.apiGroup")
    # SetDefaults_Subject and ValidateRoleBindingSubject (pkg/apis/rbac).
    if kind == "ServiceAccount":
        # ValidateServiceAccountName: a DNS-1123 subdomain.
        if len(name) > 253 or not _DNS_SUBDOMAIN.match(name):
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
    "Role": ("apiVersion", "kind", "metadata", "rules"),
    "ClusterRole": ("apiVersion", "kind", "metadata", "rules", "aggregationRule"),
    "RoleBinding": ("apiVersion", "kind", "metadata", "subjects", "roleRef"),
    "ClusterRoleBinding": ("apiVersion", "kind", "metadata", "subjects", "roleRef"),
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
    if kind not in _TOP_LEVEL:
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
    text = resources.files("skycheck").joinpath("data/bootstrap-rbac.json").read_text("utf-8")
    data = json.loads(text)
    objects = tuple(parse_object(item) for item in data["items"])
    return BootstrapPolicy(
        kubernetes_version=str(data["kubernetesVersion"]),
        source=str(data["source"]),
        placeholder=bool(data.get("placeholder", False)),
        objects=objects,
    )


# --- rule matching (pkg/apis/rbac/v1/evaluation_helpers.go) ----------------------------


@dataclass(frozen=True, slots=True)
class Request:
    """authorizer.Attributes, reduced to what RBAC reads."""

    user: str
    groups: tuple[str, ...]
    verb: str
    namespace: str = ""
    api_group: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""
    path: str = ""  # non-resource requests only
    resource_request: bool = True

    @property
    def combined_resource(self) -> str:
        return f"{self.resource}/{self.subresource}" if self.subresource else self.resource


def verb_matches(rule: PolicyRule, verb: str) -> bool:
    """VerbMatches: ``*`` or the exact verb. A request for ``*`` needs a literal ``*``."""
    return "*" in rule.verbs or verb in rule.verbs


def api_group_matches(rule: PolicyRule, group: str) -> bool:
    """APIGroupMatches: ``*`` or the exact group (``""`` is core)."""
    return "*" in rule.api_groups or group in rule.api_groups


def resource_matches(rule: PolicyRule, combined: str, subresource: str) -> bool:
    """ResourceMatches: ``*``, the exact ``resource[/sub]``, or ``*/<sub>``.

    ``pods/*`` is not special: it only matches a request whose subresource is literally ``*``.
    """
    for res in rule.resources:
        if res == "*" or res == combined:
            return True
        if subresource and res == "*/" + subresource:
            return True
    return False


def resource_name_matches(rule: PolicyRule, name: str) -> bool:
    """ResourceNameMatches: no names means any; otherwise the request's name must be listed.

    A request without a name (list, watch, create, deletecollection) has name ``""``, which
    only a literal ``""`` entry matches.
    """
    return not rule.resource_names or name in rule.resource_names


def non_resource_url_matches(rule: PolicyRule, path: str) -> bool:
    """NonResourceURLMatches: ``*``, exact, or a trailing-``*`` prefix (all ``*`` trimmed)."""
    for url in rule.non_resource_urls:
        if url == "*" or url == path:
            return True
        if url.endswith("*") and path.startswith(url.rstrip("*")):
            return True
    return False


def rule_allows(request: Request, rule: PolicyRule) -> bool:
    """RuleAllows (plugin/pkg/auth/authorizer/rbac/rbac.go)."""
    if request.resource_request:
        return (
            verb_matches(rule, request.verb)
            and api_group_matches(rule, request.api_group)
            and resource_matches(rule, request.combined_resource, request.subresource)
            and resource_name_matches(rule, request.name)
        )
    return verb_matches(rule, request.verb) and non_resource_url_matches(rule, request.path)


# --- subjects (pkg/registry/rbac/validation/rule.go) -----------------------------------


def applies_to_user(user: str, groups: Sequence[str], subject: SubjectRef, namespace: str) -> bool:
    """appliesToUser. ``namespace`` is the binding's namespace ("" for a ClusterRoleBinding).

    A ServiceAccount subject without a namespace takes the RoleBinding's namespace; in a
    ClusterRoleBinding it has none and never matches. The subject's apiGroup is ignored.
    ``serviceaccount.MatchesUsername`` is plain equality with the SA username.
    """
    if subject.kind == "User":
        return user == subject.name
    if subject.kind == "Group":
        return subject.name in groups
    if subject.kind == "ServiceAccount":
        sa_namespace = subject.namespace or namespace
        if not sa_namespace:
            return False
        return user == f"{SA_USER_PREFIX}{sa_namespace}:{subject.name}"
    return False


def _subject_keys(subject: SubjectRef, namespace: str) -> tuple[str, str] | None:
    """Index key ("user" | "group", value) under which ``subject`` can match, or None."""
    if subject.kind == "User":
        return ("user", subject.name)
    if subject.kind == "Group":
        return ("group", subject.name)
    if subject.kind == "ServiceAccount":
        sa_namespace = subject.namespace or namespace
        if not sa_namespace:
            return None
        return ("user", f"{SA_USER_PREFIX}{sa_namespace}:{subject.name}")
    return None


def _go_quote(text: str) -> str:
    """Go's ``%q`` for the names RBAC puts in its reasons."""
    out = ['"']
    for ch in text:
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif not ch.isprintable():
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x80 else f"\\u{code:04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _describe_subject(subject: SubjectRef, binding_namespace: str) -> str:
    """describeSubject: ServiceAccounts as ``name/namespace``."""
    if subject.kind == "ServiceAccount":
        ns = subject.namespace or binding_namespace
        return f"{subject.kind} {_go_quote(subject.name + '/' + ns)}"
    return f"{subject.kind} {_go_quote(subject.name)}"


def _describe_source(binding: Binding, subject: SubjectRef) -> str:
    """clusterRoleBindingDescriber / roleBindingDescriber."""
    ref = binding.role_ref
    if isinstance(binding, ClusterRoleBinding):
        return (
            f"ClusterRoleBinding {_go_quote(binding.name)} of {ref.kind} {_go_quote(ref.name)} "
            f"to {_describe_subject(subject, '')}"
        )
    return (
        f"RoleBinding {_go_quote(binding.name + '/' + binding.namespace)} of {ref.kind} "
        f"{_go_quote(ref.name)} to {_describe_subject(subject, binding.namespace)}"
    )


def _aggregate_errors(errors: Sequence[str]) -> str:
    """utilerrors.NewAggregate(...).Error(): one message, or ``[a, b]`` de-duplicated."""
    if len(errors) == 1:
        return errors[0]
    unique = list(dict.fromkeys(errors))
    return unique[0] if len(unique) == 1 else "[" + ", ".join(unique) + "]"


def describe_user(user: str) -> str:
    """``ServiceAccount ns/name`` for SA usernames, else ``User name``."""
    if user.startswith(SA_USER_PREFIX):
        rest = user[len(SA_USER_PREFIX) :].split(":")
        if len(rest) == 2 and all(rest):
            return f"ServiceAccount {rest[0]}/{rest[1]}"
    return f"User {user}"


def describe_resource(group: str, resource: str, subresource: str = "") -> str:
    """kubectl's spelling: ``pods/exec``, ``deployments.apps/scale``."""
    text = f"{resource}.{group}" if group else resource
    return f"{text}/{subresource}" if subresource else text


# --- the state: aggregation, indexes, decisions ----------------------------------------


@dataclass(frozen=True, slots=True)
class AuthzResult:
    """What the authorizer chain answers for one request.

    ``reason`` follows RBAC's own wording (``RBAC: allowed by ...``; for a denial, RBAC's
    resolution errors or ""). ``evaluation_errors`` lists unresolvable roleRefs among the
    bindings that apply to the subject. The real authorizer reports those in ``reason``
    (its ``error`` return stays nil, so a SubjectAccessReview's ``evaluationError`` is
    empty) and drops them once a rule allows. In a SubjectAccessReview the union authorizer
    prefixes a denial's reason with the authorizer's name (``rbac: RBAC: ...``), and the
    order of several errors follows the informer cache, so it varies; ours is sorted.
    """

    allowed: bool
    reason: str
    evaluation_errors: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class _Resolved:
    rules: tuple[PolicyRule, ...]
    error: str  # "" when the roleRef resolved


@dataclass(slots=True)
class _Index:
    by_user: dict[str, list[Binding]] = field(default_factory=dict)
    by_group: dict[str, list[Binding]] = field(default_factory=dict)

    def add(self, key: tuple[str, str], binding: Binding) -> None:
        table = self.by_user if key[0] == "user" else self.by_group
        bucket = table.setdefault(key[1], [])
        if not bucket or bucket[-1] is not binding:
            bucket.append(binding)

    def lookup(self, user: str, groups: Iterable[str]) -> list[Binding]:
        found: dict[int, Binding] = {}
        for b in self.by_user.get(user, ()):
            found[id(b)] = b
        for g in groups:
            for b in self.by_group.get(g, ()):
                found[id(b)] = b
        return sorted(found.values(), key=lambda b: (b.namespace, b.name))


class RbacState:
    """Every Role, ClusterRole and binding of a (virtual) cluster, ready to answer reviews.

    Later objects replace earlier ones with the same kind, namespace and name (as
    ``kubectl apply`` would). ClusterRole aggregation is computed once, at construction.
    """

    __slots__ = (
        "_bootstrap_keys",
        "_by_name",
        "_cluster_index",
        "_cluster_role_rules",
        "_cluster_roles",
        "_crbs",
        "_namespace_index",
        "_rb_all_index",
        "_rbs",
        "_roles",
        "warnings",
    )

    def __init__(
        self, objects: Iterable[RbacObject], *, bootstrap: Iterable[RbacObject] = ()
    ) -> None:
        latest: dict[tuple[str, str, str], RbacObject] = {}
        self._bootstrap_keys: set[tuple[str, str, str]] = set()
        for obj in bootstrap:
            latest[object_key(obj)] = obj
            self._bootstrap_keys.add(object_key(obj))
        for obj in objects:
            latest[object_key(obj)] = obj
            self._bootstrap_keys.discard(object_key(obj))
        self._roles: dict[tuple[str, str], Role] = {}
        self._cluster_roles: dict[str, ClusterRole] = {}
        self._rbs: list[RoleBinding] = []
        self._crbs: list[ClusterRoleBinding] = []
        for obj in latest.values():
            if isinstance(obj, Role):
                self._roles[(obj.namespace, obj.name)] = obj
            elif isinstance(obj, ClusterRole):
                self._cluster_roles[obj.name] = obj
            elif isinstance(obj, RoleBinding):
                self._rbs.append(obj)
            else:
                self._crbs.append(obj)
        self._rbs.sort(key=lambda b: (b.namespace, b.name))
        self._crbs.sort(key=lambda b: b.name)
        self.warnings: tuple[str, ...] = ()
        self._cluster_role_rules = self._aggregate()
        # Subject indexes: ClusterRoleBindings; RoleBindings per namespace; RoleBindings in
        # every namespace (explanations only); bindings by bare subject name (near misses).
        self._cluster_index = _Index()
        self._namespace_index: dict[str, _Index] = {}
        self._rb_all_index = _Index()
        self._by_name: dict[str, list[Binding]] = {}
        for crb in self._crbs:
            for s in crb.subjects:
                key = _subject_keys(s, "")
                if key:
                    self._cluster_index.add(key, crb)
                self._by_name.setdefault(s.name, []).append(crb)
        for rb in self._rbs:
            ns_index = self._namespace_index.setdefault(rb.namespace, _Index())
            for s in rb.subjects:
                key = _subject_keys(s, rb.namespace)
                if key:
                    ns_index.add(key, rb)
                    self._rb_all_index.add(key, rb)
                self._by_name.setdefault(s.name, []).append(rb)

    @classmethod
    def with_bootstrap(cls, objects: Iterable[RbacObject]) -> RbacState:
        """A state seeded with the packaged Kubernetes bootstrap policy, then ``objects``."""
        return cls(objects, bootstrap=bootstrap_policy().objects)

    # -- aggregation -------------------------------------------------------------------

    def _aggregate(self) -> dict[str, tuple[PolicyRule, ...]]:
        """The rules each ClusterRole has once kube-controller-manager has aggregated.

        clusterroleaggregation_controller.go, syncClusterRole: for a ClusterRole with an
        aggregationRule, rules = for each selector in order, for each matching ClusterRole
        sorted by name, except itself, each rule not already present (deep equality). The
        hand-written rules are replaced, unless that union is empty: the controller writes
        with server-side apply (``WithRules(newPolicyRules...)``, force), and an apply
        configuration without rules leaves the ``rules`` field to whoever wrote it, so a
        role whose selectors match nothing keeps the rules it was created with (found by
        tests/differential; regression test in tests/differential/test_regressions.py).
        The controller re-syncs on every change, so chains (view -> edit -> admin) converge;
        here we compute that fixpoint directly, from the rules as written and syncing in
        name order: the result is unique unless roles aggregate each other, and then it is
        what that order gives on a fresh cluster. A role with a selector the controller
        cannot parse keeps its own rules.
        """
        rules: dict[str, tuple[PolicyRule, ...]] = {
            name: cr.rules for name, cr in self._cluster_roles.items()
        }
        label_maps = {name: dict(cr.labels) for name, cr in self._cluster_roles.items()}
        names = sorted(self._cluster_roles)
        aggregated: list[str] = []
        sources: dict[str, list[list[str]]] = {}
        for name in names:
            agg = self._cluster_roles[name].aggregation
            if agg is None or not all(sel.valid for sel in agg):
                continue
            aggregated.append(name)
            sources[name] = [
                [m for m in names if m != name and sel.matches(label_maps[m])] for sel in agg
            ]
        # Without cycles the sets settle within a pass per level of the chains; once they are
        # stable a few more passes settle the order of the lists (cosmetic: order never
        # changes a decision). Cycles (warned about) may not settle: the passes are bounded.
        own = {name: self._cluster_roles[name].rules for name in aggregated}
        current_sets = {name: frozenset(own[name]) for name in aggregated}
        settle = len(aggregated) + 1
        for _ in range(4 * len(aggregated) + 8):
            sets_changed = lists_changed = False
            for name in aggregated:
                merged: dict[PolicyRule, None] = {}
                for matched in sources[name]:
                    for m in matched:
                        for rule in rules[m]:
                            merged.setdefault(rule, None)
                new_rules = tuple(merged) or own[name]  # nothing aggregated: rules untouched
                lists_changed |= new_rules != rules[name]
                rules[name] = new_rules
                new_set = frozenset(new_rules)
                if new_set != current_sets[name]:
                    current_sets[name] = new_set
                    sets_changed = True
            if sets_changed:
                continue
            settle -= 1
            if not lists_changed or settle <= 0:
                break
        self.warnings = self._cycle_warnings(aggregated, sources)
        return rules

    @staticmethod
    def _cycle_warnings(
        aggregated: list[str], sources: dict[str, list[list[str]]]
    ) -> tuple[str, ...]:
        agg_set = set(aggregated)
        graph = {
            n: sorted({m for matched in sources[n] for m in matched if m in agg_set})
            for n in aggregated
        }
        # Tarjan's strongly connected components, iteratively.
        index: dict[str, int] = {}
        low: dict[str, int] = {}
        on_stack: set[str] = set()
        stack: list[str] = []
        cycles: list[list[str]] = []
        counter = 0
        for root in aggregated:
            if root in index:
                continue
            work = [(root, 0)]
            while work:
                node, i = work.pop()
                if i == 0:
                    index[node] = low[node] = counter
                    counter += 1
                    stack.append(node)
                    on_stack.add(node)
                recurse = False
                for j in range(i, len(graph[node])):
                    nxt = graph[node][j]
                    if nxt not in index:
                        work.append((node, j + 1))
                        work.append((nxt, 0))
                        recurse = True
                        break
                    if nxt in on_stack:
                        low[node] = min(low[node], index[nxt])
                if recurse:
                    continue
                if low[node] == index[node]:
                    component = []
                    while True:
                        top = stack.pop()
                        on_stack.discard(top)
                        component.append(top)
                        if top == node:
                            break
                    if len(component) > 1:
                        cycles.append(sorted(component))
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
        return tuple(
            f"ClusterRoles {', '.join(c)} aggregate each other: on a cluster the result depends "
            "on the order kube-controller-manager syncs them; skycheck assumes one such order "
            "(by name)"
            for c in sorted(cycles)
        )

    # -- lookups -----------------------------------------------------------------------

    def cluster_role_rules(self, name: str) -> tuple[PolicyRule, ...] | None:
        """A ClusterRole's effective (aggregated) rules, or None if it does not exist."""
        return self._cluster_role_rules.get(name)

    def role(self, namespace: str, name: str) -> Role | None:
        return self._roles.get((namespace, name))

    def cluster_role(self, name: str) -> ClusterRole | None:
        return self._cluster_roles.get(name)

    @property
    def role_bindings(self) -> tuple[RoleBinding, ...]:
        return tuple(self._rbs)

    @property
    def cluster_role_bindings(self) -> tuple[ClusterRoleBinding, ...]:
        return tuple(self._crbs)

    def is_bootstrap(self, obj: RbacObject) -> bool:
        """True if ``obj`` came from the packaged bootstrap policy (not from the manifests)."""
        return object_key(obj) in self._bootstrap_keys

    def _resolve(self, ref: RoleRef, binding_namespace: str) -> _Resolved:
        """GetRoleReferenceRules, with the listers' NotFound messages."""
        if ref.kind == "Role":
            role = self._roles.get((binding_namespace, ref.name))
            if role is None:
                return _Resolved((), f"role.{RBAC_GROUP} {_go_quote(ref.name)} not found")
            return _Resolved(role.rules, "")
        if ref.kind == "ClusterRole":
            found = self._cluster_role_rules.get(ref.name)
            if found is None:
                return _Resolved((), f"clusterrole.{RBAC_GROUP} {_go_quote(ref.name)} not found")
            return _Resolved(found, "")
        return _Resolved((), f"unsupported role reference kind: {_go_quote(ref.kind)}")

    def _applicable(self, request: Request) -> list[tuple[Binding, SubjectRef]]:
        """Bindings that apply to the request's subject, in evaluation order.

        VisitRulesFor: ClusterRoleBindings first, then (only for a namespaced request) the
        RoleBindings of that namespace. The real listers iterate a cache in no fixed order;
        we sort by name so the named binding is deterministic.
        """
        out: list[tuple[Binding, SubjectRef]] = []
        indexes = [(self._cluster_index, "")]
        if request.namespace:
            ns_index = self._namespace_index.get(request.namespace)
            if ns_index is not None:
                indexes.append((ns_index, request.namespace))
        for idx, ns in indexes:
            for binding in idx.lookup(request.user, request.groups):
                for subject in binding.subjects:  # appliesTo: the first subject that applies
                    if applies_to_user(request.user, request.groups, subject, ns):
                        out.append((binding, subject))
                        break
        return out

    # -- decisions ---------------------------------------------------------------------

    def authorize_request(self, request: Request) -> AuthzResult:
        """The kube-apiserver authorizer chain: system:masters, then RBAC."""
        if SYSTEM_MASTERS in request.groups:
            # privilegedGroupAuthorizer answers Allow with an empty reason; say why.
            return AuthzResult(True, f"allowed: member of group {SYSTEM_MASTERS} (bypasses RBAC)")
        errors: list[str] = []
        for binding, subject in self._applicable(request):
            resolved = self._resolve(binding.role_ref, binding.namespace)
            if resolved.error:
                errors.append(resolved.error)
                continue
            for rule in resolved.rules:
                if rule_allows(request, rule):
                    return AuthzResult(
                        True, f"RBAC: allowed by {_describe_source(binding, subject)}"
                    )
        reason = f"RBAC: {_aggregate_errors(errors)}" if errors else ""
        return AuthzResult(False, reason, tuple(errors))

    def authorize(
        self,
        user: str,
        groups: Sequence[str],
        verb: str,
        api_group: str,
        resource: str,
        subresource: str = "",
        namespace: str = "",
        name: str = "",
    ) -> AuthzResult:
        """Decide one resource request. ``namespace`` "" is cluster scope (all namespaces)."""
        return self.authorize_request(
            Request(user, tuple(groups), verb, namespace, api_group, resource, subresource, name)
        )

    def authorize_path(self, user: str, groups: Sequence[str], verb: str, path: str) -> AuthzResult:
        """Decide one non-resource request (``/healthz``, ``/apis``...)."""
        return self.authorize_request(
            Request(user, tuple(groups), verb, path=path, resource_request=False)
        )

    # -- diagnostics -------------------------------------------------------------------

    def dangling_bindings(
        self, user: str | None = None, groups: Sequence[str] = ()
    ) -> tuple[str, ...]:
        """One line per binding whose roleRef does not resolve (only the subject's, if given)."""
        out: list[str] = []
        bindings: Iterable[Binding]
        if user is None:
            bindings = [*self._crbs, *self._rbs]
        else:
            bindings = [
                *self._cluster_index.lookup(user, groups),
                *self._rb_all_index.lookup(user, groups),
            ]
        for b in bindings:
            if self._resolve(b.role_ref, b.namespace).error:
                out.append(_missing_ref_line(b))
        return tuple(sorted(set(out)))

    def has_manifest_binding(self, user: str, groups: Sequence[str]) -> bool:
        """True if a binding from the manifests (not the bootstrap policy) names the subject."""
        for b in (
            *self._cluster_index.lookup(user, groups),
            *self._rb_all_index.lookup(user, groups),
        ):
            if not self.is_bootstrap(b):
                return True
        return False

    def explain_denial(
        self,
        user: str,
        groups: Sequence[str],
        verb: str,
        api_group: str,
        resource: str,
        subresource: str = "",
        namespace: str = "",
        name: str = "",
    ) -> tuple[str, ...]:
        """The nearest misses for a denied request, nearest first, one line each.

        Empty when nothing comes close (or the request is allowed). Kinds, in order:
        a grant in the wrong scope; a binding to a missing role; a binding that names
        the subject almost right (another namespace, User for ServiceAccount); a rule that
        differs in one respect (verb, group, subresource, resourceNames).
        """
        request = Request(
            user, tuple(groups), verb, namespace, api_group, resource, subresource, name
        )
        if self.authorize_request(request).allowed:
            return ()
        return _explain(self, request)


def _missing_ref_line(b: Binding) -> str:
    where = f" in namespace {b.namespace}" if isinstance(b, RoleBinding) else ""
    return f"{b.kind} {b.name}{where} references missing {b.role_ref.kind} {b.role_ref.name}"


def _role_label(ref: RoleRef, binding: Binding) -> str:
    if ref.kind == "Role":
        return f"Role {ref.name} in namespace {binding.namespace}"
    return f"{ref.kind} {ref.name}"


def _names(items: Iterable[str]) -> str:
    return "[" + ", ".join(items) + "]"


def _rule_miss(request: Request, rule: PolicyRule, role: str) -> str | None:
    """One line if ``rule`` fails the request in exactly one respect, else None."""
    if not request.resource_request:
        if non_resource_url_matches(rule, request.path) and not verb_matches(rule, request.verb):
            return f"{role} grants {request.path} for {', '.join(rule.verbs)}, not {request.verb}"
        return None
    verb_ok = verb_matches(rule, request.verb)
    group_ok = api_group_matches(rule, request.api_group)
    res_ok = resource_matches(rule, request.combined_resource, request.subresource)
    name_ok = resource_name_matches(rule, request.name)
    wanted = describe_resource(request.api_group, request.resource, request.subresource)
    if request.api_group and request.api_group in rule.resources and request.resource in rule.verbs:
        # The SkyPilot docs' short skypilot-system snippet has exactly this shape:
        # apiGroups ["*"], resources ["apps"], verbs ["daemonsets"]. It authorizes nothing.
        return (
            f"{role} lists {request.api_group} under resources and {request.resource} under "
            f"verbs: {request.api_group} is an API group and {request.resource} a resource, "
            f"so the rule grants nothing; it needs apiGroups [{request.api_group}], "
            f"resources [{request.resource}]"
        )
    misses = [verb_ok, group_ok, res_ok, name_ok].count(False)
    if misses != 1:
        return None
    if not verb_ok:
        return f"{role} grants {wanted} for {', '.join(rule.verbs)} but not {request.verb}"
    if not group_ok:
        groups = ", ".join(g or '""' for g in rule.api_groups)
        asked = request.api_group or '""'
        return f"{role} grants {request.resource} in apiGroups [{groups}], not {asked}"
    if not res_ok:
        base = request.resource
        related = [r for r in rule.resources if r == base or r.startswith(base + "/")]
        if not related:
            return None
        if f"{base}/*" in related and request.subresource:
            return (
                f"{role} lists {base}/*, which is not a wildcard in RBAC; "
                f"it needs {request.combined_resource} (or */{request.subresource})"
            )
        granted = describe_resource(request.api_group, related[0])
        return f"{role} grants {granted} but not {wanted}"
    if request.name:
        return (
            f"{role} grants {wanted} only for resourceNames {_names(rule.resource_names)}, "
            f"not {request.name}"
        )
    return (
        f"{role} grants {wanted} only for resourceNames {_names(rule.resource_names)}; "
        "resourceNames never grant list/create"
    )


def _scope_text(request: Request) -> str:
    return f"in {request.namespace}" if request.namespace else "cluster-wide"


def _explain(state: RbacState, request: Request) -> tuple[str, ...]:
    found: list[tuple[int, str]] = []
    # 1. Bindings that apply to the subject, in any scope.
    candidates: list[Binding] = [
        *state._cluster_index.lookup(request.user, request.groups),
        *state._rb_all_index.lookup(request.user, request.groups),
    ]
    for b in candidates:
        in_scope = isinstance(b, ClusterRoleBinding) or b.namespace == request.namespace
        subject_ok = any(
            applies_to_user(request.user, request.groups, s, b.namespace) for s in b.subjects
        )
        if not subject_ok:
            continue
        resolved = state._resolve(b.role_ref, b.namespace)
        if resolved.error:
            if in_scope:
                found.append((1, _missing_ref_line(b)))
            continue
        role = _role_label(b.role_ref, b)
        if not in_scope:
            if any(rule_allows(request, r) for r in resolved.rules):
                if b.role_ref.kind == "ClusterRole":
                    line = (
                        f"ClusterRole {b.role_ref.name} bound by RoleBinding {b.name} applies "
                        f"only in namespace {b.namespace}, the check is {_scope_text(request)}"
                    )
                else:
                    check = (
                        f"the check is in {request.namespace}"
                        if request.namespace
                        else "the check is cluster-wide (it needs a ClusterRoleBinding)"
                    )
                    line = f"RoleBinding {b.name} is in namespace {b.namespace}, {check}"
                found.append((0, line))
            continue
        for r in resolved.rules:
            miss = _rule_miss(request, r, role)
            if miss:
                found.append((3, miss))
    # 2. Bindings that name the subject almost right.
    sa = (
        request.user[len(SA_USER_PREFIX) :].split(":")
        if request.user.startswith(SA_USER_PREFIX)
        else []
    )
    bare = sa[1] if len(sa) == 2 else request.user
    for b in state._by_name.get(bare, ()):
        in_scope = isinstance(b, ClusterRoleBinding) or b.namespace == request.namespace
        if not in_scope:
            continue
        if any(applies_to_user(request.user, request.groups, s, b.namespace) for s in b.subjects):
            continue
        resolved = state._resolve(b.role_ref, b.namespace)
        if resolved.error or not any(rule_allows(request, r) for r in resolved.rules):
            continue
        where = f"{b.kind} {b.name}" + (
            f" in namespace {b.namespace}" if isinstance(b, RoleBinding) else ""
        )
        for s in b.subjects:
            if s.name != bare:
                continue
            if s.kind == "ServiceAccount":
                ns = s.namespace or b.namespace
                if not ns:
                    found.append(
                        (
                            2,
                            f"{where} names ServiceAccount {s.name} without a namespace, "
                            "which never matches in a ClusterRoleBinding",
                        )
                    )
                else:
                    found.append(
                        (
                            2,
                            f"{where} binds ServiceAccount {ns}/{s.name}, "
                            f"not {describe_user(request.user)}",
                        )
                    )
            elif s.kind == "User":
                found.append(
                    (
                        2,
                        f"{where} binds User {s.name}, not {describe_user(request.user)} "
                        f"(a ServiceAccount's user name is {SA_USER_PREFIX}<namespace>:<name>)",
                    )
                )
    seen: set[str] = set()
    out: list[str] = []
    for _, line in sorted(found):
        if line not in seen:
            seen.add(line)
            out.append(line)
    return tuple(out)
