"""The authorizer: every Role, ClusterRole and binding, indexed by subject, answering reviews.

``VisitRulesFor`` and ``GetRoleReferenceRules`` (``pkg/registry/rbac/validation/rule.go``),
with ``system:masters`` ahead of RBAC as ``authorizerfactory.NewPrivilegedGroups`` places it
(``pkg/kubeapiserver/authorizer/reload.go``). Lookups are indexed by subject (user name,
group, service account), so one decision costs time proportional to the bindings that name
the subject, not to the size of the manifests.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from skycheck.rbac.aggregation import aggregate
from skycheck.rbac.matching import (
    Request,
    aggregate_errors,
    applies_to_user,
    describe_source,
    go_quote,
    missing_ref_line,
    rule_allows,
    subject_keys,
)
from skycheck.rbac.model import (
    RBAC_GROUP,
    SYSTEM_MASTERS,
    Binding,
    ClusterRole,
    ClusterRoleBinding,
    PolicyRule,
    RbacObject,
    Role,
    RoleBinding,
    RoleRef,
    SubjectRef,
    object_key,
)
from skycheck.rbac.parse import bootstrap_policy


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
class Resolved:
    """A roleRef's rules, or why it does not resolve."""

    rules: tuple[PolicyRule, ...]
    error: str  # "" when the roleRef resolved


# Subjects whose lookups an index remembers; a run over many identities (an audit across
# a cluster) asks the same subject's bindings for every check, a run over one asks few.
_LOOKUP_CACHE = 4096


class _Index:
    """Bindings by user name and by group name. A plain class: it is never compared or
    printed, and a dataclass would compile methods for that at every start (0.2 ms).

    ``lookup`` remembers its answer per subject: every check of an identity asks the same
    question, and the index does not change once the state is built."""

    __slots__ = ("_found", "by_group", "by_user")

    def __init__(self) -> None:
        self.by_user: dict[str, list[Binding]] = {}
        self.by_group: dict[str, list[Binding]] = {}
        self._found: dict[tuple[str, tuple[str, ...]], tuple[Binding, ...]] = {}

    def add(self, key: tuple[str, str], binding: Binding) -> None:
        table = self.by_user if key[0] == "user" else self.by_group
        bucket = table.setdefault(key[1], [])
        if not bucket or bucket[-1] is not binding:
            bucket.append(binding)

    def lookup(self, user: str, groups: Iterable[str]) -> tuple[Binding, ...]:
        key = (user, tuple(groups))
        known = self._found.get(key)
        if known is not None:
            return known
        found: dict[int, Binding] = {}
        for b in self.by_user.get(user, ()):
            found[id(b)] = b
        for g in key[1]:
            for b in self.by_group.get(g, ()):
                found[id(b)] = b
        out = tuple(sorted(found.values(), key=lambda b: (b.namespace, b.name)))
        if len(self._found) >= _LOOKUP_CACHE:
            self._found.clear()
        self._found[key] = out
        return out


class RbacState:
    """Every Role, ClusterRole and binding of a (virtual) cluster, ready to answer reviews.

    Later objects replace earlier ones with the same kind, namespace and name (as
    ``kubectl apply`` would). ClusterRole aggregation is computed once, at construction.
    """

    __slots__ = (
        "_applies",
        "_bootstrap_keys",
        "_by_name",
        "_cluster_index",
        "_cluster_role_rules",
        "_cluster_roles",
        "_crbs",
        "_namespace_index",
        "_rb_all_index",
        "_rbs",
        "_resolved",
        "_role_uses",
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
        self._bootstrap_keys.update(latest)
        discard = self._bootstrap_keys.discard
        for obj in objects:
            identity = (obj.kind, obj.namespace, obj.name)  # object_key, inlined
            latest[identity] = obj
            discard(identity)
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
        self._cluster_role_rules, self.warnings = aggregate(self._cluster_roles)
        # Subject indexes: ClusterRoleBindings; RoleBindings per namespace; RoleBindings in
        # every namespace (explanations only); bindings by bare subject name (near misses).
        self._cluster_index = _Index()
        self._namespace_index: dict[str, _Index] = {}
        self._rb_all_index = _Index()
        self._by_name: dict[str, list[Binding]] = {}
        self._role_uses: dict[tuple[str, str, str], int] | None = None
        # Memos: the state never changes once built, and a run asks the same questions
        # for every check of an identity (roleRefs resolved; bindings that apply).
        self._resolved: dict[tuple[str, str, str], Resolved] = {}
        self._applies: dict[
            tuple[str, tuple[str, ...], str], tuple[tuple[Binding, SubjectRef], ...]
        ] = {}
        for crb in self._crbs:
            for s in crb.subjects:
                key = subject_keys(s, "")
                if key:
                    self._cluster_index.add(key, crb)
                self._by_name.setdefault(s.name, []).append(crb)
        for rb in self._rbs:
            ns_index = self._namespace_index.get(rb.namespace)
            if ns_index is None:  # (not setdefault: that would build an _Index per binding)
                ns_index = self._namespace_index[rb.namespace] = _Index()
            for s in rb.subjects:
                key = subject_keys(s, rb.namespace)
                if key:
                    ns_index.add(key, rb)
                    self._rb_all_index.add(key, rb)
                self._by_name.setdefault(s.name, []).append(rb)

    @classmethod
    def with_bootstrap(cls, objects: Iterable[RbacObject]) -> RbacState:
        """A state seeded with the packaged Kubernetes bootstrap policy, then ``objects``."""
        return cls(objects, bootstrap=bootstrap_policy().objects)

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

    def bindings_for(self, user: str, groups: Sequence[str]) -> list[Binding]:
        """Every binding with a subject entry for ``user`` or one of ``groups``, any scope.

        ClusterRoleBindings first, then RoleBindings of every namespace, each by name.
        """
        return [
            *self._cluster_index.lookup(user, groups),
            *self._rb_all_index.lookup(user, groups),
        ]

    def role_uses(self) -> dict[tuple[str, str, str], int]:
        """How many bindings refer to each role: (kind, namespace, name) -> count, a
        ClusterRole's namespace "". Counted once, on first use."""
        if self._role_uses is None:
            uses: dict[tuple[str, str, str], int] = {}
            bindings: list[Binding] = [*self._crbs, *self._rbs]
            for b in bindings:
                ref = b.role_ref
                role_key = (ref.kind, b.namespace if ref.kind == "Role" else "", ref.name)
                uses[role_key] = uses.get(role_key, 0) + 1
            self._role_uses = uses
        return self._role_uses

    def bindings_naming(self, name: str) -> tuple[Binding, ...]:
        """Bindings with a subject called ``name`` (any kind or namespace): near misses."""
        return tuple(self._by_name.get(name, ()))

    def resolve(self, ref: RoleRef, binding_namespace: str) -> Resolved:
        """GetRoleReferenceRules, with the listers' NotFound messages."""
        key = (ref.kind, binding_namespace if ref.kind == "Role" else "", ref.name)
        known = self._resolved.get(key)
        if known is None:
            known = self._resolved[key] = self._resolve(ref, binding_namespace)
        return known

    def _resolve(self, ref: RoleRef, binding_namespace: str) -> Resolved:
        if ref.kind == "Role":
            role = self._roles.get((binding_namespace, ref.name))
            if role is None:
                return Resolved((), f"role.{RBAC_GROUP} {go_quote(ref.name)} not found")
            return Resolved(role.rules, "")
        if ref.kind == "ClusterRole":
            found = self._cluster_role_rules.get(ref.name)
            if found is None:
                return Resolved((), f"clusterrole.{RBAC_GROUP} {go_quote(ref.name)} not found")
            return Resolved(found, "")
        return Resolved((), f"unsupported role reference kind: {go_quote(ref.kind)}")

    def _applicable(self, request: Request) -> tuple[tuple[Binding, SubjectRef], ...]:
        """Bindings that apply to the request's subject, in evaluation order.

        VisitRulesFor: ClusterRoleBindings first, then (only for a namespaced request) the
        RoleBindings of that namespace. The real listers iterate a cache in no fixed order;
        we sort by name so the named binding is deterministic.
        """
        key = (request.user, request.groups, request.namespace)
        known = self._applies.get(key)
        if known is None:
            if len(self._applies) >= _LOOKUP_CACHE:
                self._applies.clear()
            known = self._applies[key] = tuple(self._find_applicable(request))
        return known

    def _find_applicable(self, request: Request) -> list[tuple[Binding, SubjectRef]]:
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
            resolved = self.resolve(binding.role_ref, binding.namespace)
            if resolved.error:
                errors.append(resolved.error)
                continue
            for rule in resolved.rules:
                if rule_allows(request, rule):
                    return AuthzResult(
                        True, f"RBAC: allowed by {describe_source(binding, subject)}"
                    )
        reason = f"RBAC: {aggregate_errors(errors)}" if errors else ""
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
        every: list[Binding] = [*self._crbs, *self._rbs]
        bindings = every if user is None else self.bindings_for(user, groups)
        for b in bindings:
            if self.resolve(b.role_ref, b.namespace).error:
                out.append(missing_ref_line(b))
        return tuple(sorted(set(out)))

    def has_manifest_binding(self, user: str, groups: Sequence[str]) -> bool:
        """True if a binding from the manifests (not the bootstrap policy) names the subject."""
        return any(not self.is_bootstrap(b) for b in self.bindings_for(user, groups))
