"""Rule and subject matching, and RBAC's own wording for what matched.

Mirrors ``pkg/apis/rbac/v1/evaluation_helpers.go`` (VerbMatches, APIGroupMatches,
ResourceMatches, ResourceNameMatches, NonResourceURLMatches), ``RuleAllows`` in
``plugin/pkg/auth/authorizer/rbac/rbac.go``, and ``appliesToUser`` and the describers in
``pkg/registry/rbac/validation/rule.go``. Shared by the authorizer and the explainer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from skycheck.names import sa_username, split_sa_username
from skycheck.rbac.model import (
    Binding,
    ClusterRoleBinding,
    PolicyRule,
    RoleBinding,
    SubjectRef,
)


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
        return user == sa_username(sa_namespace, subject.name)
    return False


def subject_keys(subject: SubjectRef, namespace: str) -> tuple[str, str] | None:
    """Index key ("user" | "group", value) under which ``subject`` can match, or None."""
    if subject.kind == "User":
        return ("user", subject.name)
    if subject.kind == "Group":
        return ("group", subject.name)
    if subject.kind == "ServiceAccount":
        sa_namespace = subject.namespace or namespace
        if not sa_namespace:
            return None
        return ("user", sa_username(sa_namespace, subject.name))
    return None


def go_quote(text: str) -> str:
    """Go's ``%q`` for the names RBAC puts in its reasons."""
    if text.isprintable() and '"' not in text and "\\" not in text:
        return f'"{text}"'  # the usual name: nothing to escape
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


def describe_subject(subject: SubjectRef, binding_namespace: str) -> str:
    """describeSubject: ServiceAccounts as ``name/namespace``."""
    if subject.kind == "ServiceAccount":
        ns = subject.namespace or binding_namespace
        return f"{subject.kind} {go_quote(subject.name + '/' + ns)}"
    return f"{subject.kind} {go_quote(subject.name)}"


def describe_source(binding: Binding, subject: SubjectRef) -> str:
    """clusterRoleBindingDescriber / roleBindingDescriber."""
    ref = binding.role_ref
    if isinstance(binding, ClusterRoleBinding):
        return (
            f"ClusterRoleBinding {go_quote(binding.name)} of {ref.kind} {go_quote(ref.name)} "
            f"to {describe_subject(subject, '')}"
        )
    return (
        f"RoleBinding {go_quote(binding.name + '/' + binding.namespace)} of {ref.kind} "
        f"{go_quote(ref.name)} to {describe_subject(subject, binding.namespace)}"
    )


def aggregate_errors(errors: Sequence[str]) -> str:
    """utilerrors.NewAggregate(...).Error(): one message, or ``[a, b]`` de-duplicated."""
    if len(errors) == 1:
        return errors[0]
    unique = list(dict.fromkeys(errors))
    return unique[0] if len(unique) == 1 else "[" + ", ".join(unique) + "]"


def describe_user(user: str) -> str:
    """``ServiceAccount ns/name`` for SA usernames, else ``User name``."""
    parts = split_sa_username(user)
    if parts is not None:
        return f"ServiceAccount {parts[0]}/{parts[1]}"
    return f"User {user}"


def describe_resource(group: str, resource: str, subresource: str = "") -> str:
    """kubectl's spelling: ``pods/exec``, ``deployments.apps/scale``."""
    text = f"{resource}.{group}" if group else resource
    return f"{text}/{subresource}" if subresource else text


def missing_ref_line(b: Binding) -> str:
    where = f" in namespace {b.namespace}" if isinstance(b, RoleBinding) else ""
    return f"{b.kind} {b.name}{where} references missing {b.role_ref.kind} {b.role_ref.name}"
