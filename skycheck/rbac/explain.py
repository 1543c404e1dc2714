"""The nearest-miss explainer: why a denied request was denied, in the user's terms.

Builds on the authorizer and asks it only through its public surface
(``authorize_request``, ``bindings_for``, ``bindings_naming``, ``resolve``); the authorizer
does not know about it. Kinds of near miss, nearest first: a grant in the wrong scope; a
binding to a missing role; a binding that names the subject almost right; a rule that
differs in one respect (verb, group, subresource, resourceNames).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from skycheck.names import SA_PREFIX, split_sa_username
from skycheck.rbac.authorizer import RbacState
from skycheck.rbac.matching import (
    Request,
    api_group_matches,
    applies_to_user,
    describe_resource,
    describe_user,
    missing_ref_line,
    non_resource_url_matches,
    resource_matches,
    resource_name_matches,
    rule_allows,
    verb_matches,
)
from skycheck.rbac.model import (
    Binding,
    ClusterRoleBinding,
    PolicyRule,
    RoleBinding,
    RoleRef,
)


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


def explain_denial(
    state: RbacState,
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
    request = Request(user, tuple(groups), verb, namespace, api_group, resource, subresource, name)
    if state.authorize_request(request).allowed:
        return ()
    return explain(state, request)


def explain(state: RbacState, request: Request) -> tuple[str, ...]:
    """The nearest misses for a request ``state`` denies, nearest first (see ``explain_denial``)."""
    found: list[tuple[int, str]] = []
    # 1. Bindings that apply to the subject, in any scope.
    candidates = state.bindings_for(request.user, request.groups)
    for b in candidates:
        in_scope = isinstance(b, ClusterRoleBinding) or b.namespace == request.namespace
        subject_ok = any(
            applies_to_user(request.user, request.groups, s, b.namespace) for s in b.subjects
        )
        if not subject_ok:
            continue
        resolved = state.resolve(b.role_ref, b.namespace)
        if resolved.error:
            if in_scope:
                found.append((1, missing_ref_line(b)))
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
    sa = split_sa_username(request.user)
    bare = sa[1] if sa is not None else request.user
    for b in state.bindings_naming(bare):
        in_scope = isinstance(b, ClusterRoleBinding) or b.namespace == request.namespace
        if not in_scope:
            continue
        if any(applies_to_user(request.user, request.groups, s, b.namespace) for s in b.subjects):
            continue
        resolved = state.resolve(b.role_ref, b.namespace)
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
                        f"(a ServiceAccount's user name is {SA_PREFIX}<namespace>:<name>)",
                    )
                )
    seen: set[str] = set()
    out: list[str] = []
    for _, line in sorted(found):
        if line not in seen:
            seen.add(line)
            out.append(line)
    return tuple(out)
