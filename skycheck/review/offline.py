"""The offline reviewer: decide requirements from RBAC manifests, without a cluster.

Decisions come from :class:`skycheck.rbac.RbacState`, which evaluates the manifests (plus
the Kubernetes bootstrap policy every cluster has) with the kube-apiserver's RBAC semantics.
A denial's reason is the nearest miss (``Role sky-sa-role in namespace default grants pods
but not pods/exec``), so the user sees what to change, not only that something is missing.

What offline mode cannot know is said, not guessed: whether a namespace exists is True only
for built-in namespaces and Namespace objects in the manifests, otherwise None (unknown).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from skycheck import rbac
from skycheck.manifests import Manifests
from skycheck.models import (
    Decision,
    Finding,
    Method,
    Requirement,
    Subject,
    namespaces_to_look_up,
)
from skycheck.review import ReviewResult

# Namespaces every cluster has (the apiserver creates them; kube-node-lease since 1.14).
BUILTIN_NAMESPACES = frozenset({"default", "kube-system", "kube-public", "kube-node-lease"})


class OfflineReviewer:
    """Reviewer over an :class:`~skycheck.rbac.RbacState` (usually built from manifests)."""

    mode: str = "offline"

    def __init__(
        self,
        state: rbac.RbacState,
        namespaces: Iterable[str] = (),
        service_accounts: Iterable[tuple[str, str]] | None = None,
        warnings: Iterable[str] = (),
    ) -> None:
        """``namespaces``: Namespace objects known to exist (built-ins are added).

        ``service_accounts``: (namespace, name) pairs defined in the manifests; None means
        "not known", which turns off the warning about a checked ServiceAccount missing.
        ``warnings``: passed through (e.g. the manifest loader's).
        """
        self.state = state
        self.namespaces = frozenset(namespaces) | BUILTIN_NAMESPACES
        self.service_accounts = None if service_accounts is None else frozenset(service_accounts)
        self.extra_warnings = tuple(warnings)

    @classmethod
    def from_manifests(cls, manifests: Manifests, *, bootstrap: bool = True) -> OfflineReviewer:
        """The usual construction: the manifests over the Kubernetes bootstrap policy."""
        state = (
            rbac.RbacState.with_bootstrap(manifests.objects)
            if bootstrap
            else rbac.RbacState(manifests.objects)
        )
        return cls(
            state,
            namespaces=manifests.namespaces,
            service_accounts=manifests.service_accounts,
            warnings=manifests.warnings,
        )

    def review(self, subject: Subject, requirements: Sequence[Requirement]) -> ReviewResult:
        findings = tuple(self._decide(subject, req) for req in requirements)
        return ReviewResult(
            findings=findings,
            method=Method.OFFLINE,
            warnings=self._warnings(subject),
            namespaces=self._namespaces(requirements),
        )

    def _decide(self, subject: Subject, req: Requirement) -> Finding:
        result = self.state.authorize(
            subject.username,
            subject.groups,
            req.verb,
            req.group,
            req.resource,
            req.subresource,
            req.request_namespace,  # a namespace read by name is authorized in itself
            req.name,
        )
        if result.allowed:
            return Finding(req, Decision.ALLOWED, result.reason)
        misses = rbac.explain_denial(
            self.state,
            subject.username,
            subject.groups,
            req.verb,
            req.group,
            req.resource,
            req.subresource,
            req.request_namespace,  # a namespace read by name is authorized in itself
            req.name,
        )
        return Finding(req, Decision.DENIED, misses[0] if misses else self._no_grant(subject, req))

    def _no_grant(self, subject: Subject, req: Requirement) -> str:
        who = rbac.describe_user(subject.username)
        if not self.state.has_manifest_binding(subject.username, subject.groups):
            return (
                f"no RoleBinding or ClusterRoleBinding in the manifests applies to {who} "
                "or its groups"
            )
        return f"no role bound to {who} grants {req.describe()}"

    def _warnings(self, subject: Subject) -> tuple[str, ...]:
        out = list(self.extra_warnings)
        out += self.state.warnings
        for line in self.state.dangling_bindings(subject.username, subject.groups):
            out.append(f"{line}: the binding grants nothing")
        if (
            subject.is_service_account
            and self.service_accounts is not None
            and subject.namespace is not None
            and (subject.namespace, subject.name) not in self.service_accounts
            and subject.name != "default"  # every namespace has one
        ):
            out.append(
                f"ServiceAccount {subject.namespace}/{subject.name} is not in the manifests; "
                "offline mode cannot tell whether it exists"
            )
        return tuple(dict.fromkeys(out))

    def _namespaces(
        self, requirements: Sequence[Requirement]
    ) -> tuple[tuple[str, bool | None], ...]:
        wanted = namespaces_to_look_up(requirements)
        return tuple((ns, True if ns in self.namespaces else None) for ns in wanted)
