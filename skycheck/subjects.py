"""Across a cluster: which identities an audit covers, and its summary.

``--all-subjects`` covers every subject (User, Group, ServiceAccount) a binding of the RBAC
read names that holds SkyPilot's core feature (every check of core that gates is granted:
it can run SkyPilot); ``--service-accounts-of NS`` covers every ServiceAccount of NS
whatever it holds (the ServiceAccount objects read, the accounts the bindings name there,
and ``default``, which every namespace has). Bindings of the cluster's default policy
(label ``kubernetes.io/bootstrapping: rbac-defaults``, or the packaged bootstrap policy
offline) name the control plane's own identities: their subjects are not covered.

A candidate is first asked the gating core checks alone, straight from the authorizer,
stopping at the first denial (most subjects named by a large cluster's bindings hold
nothing of SkyPilot's); only those that hold them all get the full check, so the cost grows
with the identities audited, not with the subjects named.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from skycheck import rbac
from skycheck.excess_types import RISK_ORDER
from skycheck.models import (
    AUTHENTICATED,
    Decision,
    Report,
    Requirement,
    Subject,
    Verdict,
    gate_verdict,
)

CORE = "core"
_BOOTSTRAP_LABEL = ("kubernetes.io/bootstrapping", "rbac-defaults")
_UNAUTHENTICATED = "system:unauthenticated"
_KIND_RANK = {"User": 0, "Group": 1, "ServiceAccount": 2}


def group_subject(name: str) -> Subject:
    """A member of group ``name``, as far as that group grants: no user name of its own,
    and the group every request of its kind carries (``system:authenticated``, or none for
    ``system:unauthenticated``)."""
    groups = (name,) if name in (_UNAUTHENTICATED, AUTHENTICATED) else (name, AUTHENTICATED)
    return Subject(kind="Group", name=name, namespace=None, username="", groups=groups)


def _subject(ref: rbac.SubjectRef, binding_namespace: str) -> Subject | None:
    if ref.kind == "ServiceAccount":
        namespace = ref.namespace or binding_namespace
        return Subject.service_account(ref.name, namespace) if namespace and ref.name else None
    if ref.kind == "Group":
        return group_subject(ref.name) if ref.name else None
    if ref.kind == "User" and ref.name:
        from skycheck import identity

        return identity.user(ref.name, ())
    return None  # an unknown kind grants nothing (the authorizer ignores it)


def _is_default_policy(state: rbac.RbacState, binding: rbac.Binding) -> bool:
    return state.is_bootstrap(binding) or _BOOTSTRAP_LABEL in binding.labels


def key(subject: Subject) -> tuple[object, ...]:
    """The order of an audit's reports: users, groups, service accounts; then by name."""
    return (_KIND_RANK.get(subject.kind, 3), subject.namespace or "", subject.name)


def named_subjects(state: rbac.RbacState) -> list[Subject]:
    """Every subject the bindings read name (the default policy's left out), sorted."""
    found: dict[tuple[str, str], Subject] = {}
    bindings: list[rbac.Binding] = [*state.cluster_role_bindings, *state.role_bindings]
    for binding in bindings:
        if _is_default_policy(state, binding):
            continue
        for ref in binding.subjects:
            subject = _subject(ref, binding.namespace)
            if subject is not None:
                found.setdefault((subject.kind, subject.username or subject.name), subject)
    return sorted(found.values(), key=key)


def service_accounts_of(
    state: rbac.RbacState, namespaces: Iterable[str], defined: Iterable[tuple[str, str]] = ()
) -> list[Subject]:
    """Every ServiceAccount of ``namespaces``: those defined (``(namespace, name)``), those
    the bindings name, and ``default``; sorted."""
    wanted = set(namespaces)
    names = {(ns, "default") for ns in wanted}
    names |= {(ns, name) for ns, name in defined if ns in wanted}
    for subject in named_subjects(state):
        if subject.is_service_account and subject.namespace in wanted:
            names.add((subject.namespace, subject.name))
    return sorted(
        (Subject.service_account(name, ns) for ns, name in names),
        key=key,
    )


def holds(state: rbac.RbacState, subject: Subject, requirements: Sequence[Requirement]) -> bool:
    """Whether the authorizer grants ``subject`` every one of ``requirements`` (stops at the
    first denial). A check the API server may also grant another way (bind or escalate:
    its alternative) is left to the full check."""
    for r in requirements:
        if r.alternative is not None:
            continue
        if not state.authorize(
            subject.username,
            subject.groups,
            r.verb,
            r.group,
            r.resource,
            r.subresource,
            r.request_namespace,
            r.name,
        ).allowed:
            return False
    return True


def holds_core(report: Report) -> bool:
    """The full check's word: every check of core that gates is granted."""
    from skycheck.render._common import gates

    core = [f for f in report.findings if f.requirement.feature == CORE]
    return bool(core) and not any(
        f.decision is not Decision.ALLOWED and f.requirement.required and gates(report, f)
        for f in core
    )


@dataclass(frozen=True, slots=True)
class Row:
    """One identity of an audit: its verdict, what is missing, its excess by risk."""

    report: Report
    missing: int  # denied checks that gate
    unknown: int  # undecided checks that gate
    excess: dict[str, int] | None  # per risk class; None: the excess could not be read

    @property
    def verdict(self) -> Verdict:
        return self.report.verdict


def row(report: Report) -> Row:
    from skycheck.excess_types import ExcessState
    from skycheck.render._common import gates

    gating = [f for f in report.findings if gates(report, f)]
    missing = sum(1 for f in gating if f.decision is Decision.DENIED)
    unknown = sum(1 for f in gating if f.decision is Decision.UNKNOWN)
    e = report.excess
    counts = None if e is None or e.state is ExcessState.UNKNOWN else e.counts()
    return Row(report, missing, unknown, counts)


@dataclass(frozen=True, slots=True)
class Summary:
    rows: tuple[Row, ...]

    @property
    def verdict(self) -> Verdict:
        return gate_verdict([r.report for r in self.rows])

    def verdicts(self) -> dict[str, int]:
        out = {v.value: 0 for v in (Verdict.PASS, Verdict.FAIL, Verdict.UNKNOWN)}
        for r in self.rows:
            out[r.verdict.value] += 1
        return out

    def excess_totals(self) -> dict[str, int]:
        out = {risk.value: 0 for risk in RISK_ORDER}
        for r in self.rows:
            for name, n in (r.excess or {}).items():
                out[name] += n
        return out


def summarize(reports: Sequence[Report]) -> Summary:
    return Summary(tuple(row(r) for r in reports))


__all__ = [
    "Row",
    "Summary",
    "group_subject",
    "holds",
    "holds_core",
    "key",
    "named_subjects",
    "row",
    "service_accounts_of",
    "summarize",
]
