"""The excess audit's data: what an identity holds beyond what SkyPilot needs, and its risk.

Frozen, slotted dataclasses with tuple fields, like ``models.py``, which imports them for
``Report.excess``; this module imports nothing of skycheck, so neither side imports back.
``excess.py`` computes them, ``risk.py`` rates them, the renderers show them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from skycheck.permission import Permission


class Risk(str, enum.Enum):
    """How dangerous a permission is (rules/risk.yaml)."""

    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"

    @property
    def rank(self) -> int:
        """3 for critical down to 0 for low: higher is worse."""
        return _RANK[self]

    def at_least(self, level: Risk) -> bool:
        return self.rank >= level.rank


_RANK = {Risk.CRITICAL: 3, Risk.HIGH: 2, Risk.MEDIUM: 1, Risk.LOW: 0}
RISK_ORDER = (Risk.CRITICAL, Risk.HIGH, Risk.MEDIUM, Risk.LOW)


class ExcessState(str, enum.Enum):
    """How much of what the identity holds could be read."""

    COMPLETE = "complete"  # every grant was read (manifests, or the cluster's RBAC objects)
    INCOMPLETE = "incomplete"  # SelfSubjectRulesReview marked incomplete: more may be held
    UNKNOWN = "unknown"  # nothing could be read: never "no excess"


@dataclass(frozen=True, slots=True)
class Grant:
    """Where a permission comes from: a role and the binding that gives it to the identity.

    ``namespace`` is the binding's ("" for a ClusterRoleBinding); ``kind`` "Group" with
    ``name`` system:masters stands for the group that bypasses RBAC (no role, no binding).
    ``shared``: the binding names other subjects too (or a group), or other bindings use the
    role, so changing either changes what others hold. ``rule``: the index of the rule in
    the role's ``rules`` to change; None for an aggregated ClusterRole (its rules come from
    the roles it aggregates) or when the source names no rule.
    """

    role_kind: str
    role: str
    binding_kind: str
    binding: str
    namespace: str = ""
    shared: bool = False
    rule: int | None = None

    def describe(self) -> str:
        if not self.binding_kind:
            return f"{self.role_kind} {self.role}".rstrip()
        where = f" in namespace {self.namespace}" if self.namespace else ""
        rule = f" rules[{self.rule}]" if self.rule is not None else " (aggregated)"
        return f"{self.role_kind} {self.role}{rule} via {self.binding_kind} {self.binding}{where}"


@dataclass(frozen=True, slots=True)
class ExcessItem(Permission):
    """One permission held beyond the need: one verb on one resource in one scope.

    ``namespace`` "" is cluster-wide (every namespace for a namespaced resource); ``name``
    "" is every object. ``resource`` ``*`` (``wildcard``) stands for what a wildcard reaches
    beyond the resources skycheck knows: any other or future resource. ``needed`` is set
    when SkyPilot needs a narrower part of it (one namespace, one name): what that part is.
    """

    risk: Risk
    granted_by: tuple[Grant, ...]
    reason: str  # why the risk class (the risk table's entry), or "" for the default
    risk_id: str = ""  # the risk table's entry id, or "default-read" / "default-write"
    needed: str = ""
    non_resource_url: str = ""
    wildcard: bool = False

    def describe(self) -> str:
        """kubectl-like: ``watch secrets -n default``, ``get nodes (cluster-wide)``."""
        if self.non_resource_url:
            return f"{self.verb} {self.non_resource_url}"
        # Permission.describe by name: zero-argument super() fails in a slots dataclass.
        return Permission.describe(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class NeededRisk(Permission):
    """A risky permission SkyPilot needs: its class and why, for a reviewer to sign off."""

    check_id: str
    risk: Risk
    risk_id: str
    reason: str  # why it is risky (the risk table)
    why: str  # why SkyPilot needs it (the catalogue)


@dataclass(frozen=True, slots=True)
class Excess:
    """The excess audit of one report: what was held beyond the need, and how it was read."""

    state: ExcessState
    source: str  # "manifests" | "rbac-objects" | "SelfSubjectRulesReview" | ""
    items: tuple[ExcessItem, ...] = ()
    needed: tuple[NeededRisk, ...] = ()  # risky permissions SkyPilot needs (medium and up)
    notes: tuple[str, ...] = ()  # what the audit left out or could not see
    # The least-privilege replacement: the fix-it generator's manifest for the need.
    least_privilege: str | None = None

    def counts(self) -> dict[str, int]:
        """Items per risk class, every class present (critical first)."""
        out = {r.value: 0 for r in RISK_ORDER}
        for item in self.items:
            out[item.risk.value] += 1
        return out

    def at_least(self, level: Risk) -> tuple[ExcessItem, ...]:
        return tuple(i for i in self.items if i.risk.at_least(level))
