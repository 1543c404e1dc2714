"""What a subject holds: every rule of every binding that applies to it, with its scope.

``VisitRulesFor`` (``pkg/registry/rbac/validation/rule.go``) for every namespace at once:
the ClusterRoleBindings that apply to the subject (their rules hold cluster-wide) and the
RoleBindings of every namespace that apply to it (their rules hold in that namespace),
each resolved with the authorizer's own ``resolve`` (aggregation included). Built only on
the authorizer's public methods, as ``explain.py`` is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from skycheck.rbac.authorizer import RbacState
from skycheck.rbac.matching import applies_to_user
from skycheck.rbac.model import SYSTEM_MASTERS, Binding, PolicyRule, RoleBinding, SubjectRef


@dataclass(frozen=True, slots=True)
class HeldRules:
    """The rules one binding gives the subject; ``namespace`` "" means cluster-wide."""

    binding: Binding
    subject: SubjectRef  # the binding's first subject entry that applies
    rules: tuple[PolicyRule, ...]
    namespace: str
    error: str = ""  # the roleRef does not resolve: the binding grants nothing


def rules_held(state: RbacState, user: str, groups: Sequence[str]) -> tuple[HeldRules, ...]:
    """Every binding that applies to ``user``/``groups``, ClusterRoleBindings first."""
    out: list[HeldRules] = []
    for binding in state.bindings_for(user, groups):
        namespace = binding.namespace if isinstance(binding, RoleBinding) else ""
        for subject in binding.subjects:  # appliesTo: the first subject entry that applies
            if applies_to_user(user, groups, subject, namespace):
                resolved = state.resolve(binding.role_ref, namespace)
                out.append(HeldRules(binding, subject, resolved.rules, namespace, resolved.error))
                break
    return tuple(out)


def bypasses_rbac(groups: Sequence[str]) -> bool:
    """A member of system:masters is allowed everything before RBAC is asked."""
    return SYSTEM_MASTERS in groups
