"""The excess audit as the human and CI formats show it: rows, a summary line, gating.

Items are grouped into rows of one risk class, resource, scope, note and grant, with their
verbs collapsed (``secrets -n default: get, list, watch``), so ``*`` on ``*`` stays about one
row per resource. An item *gates* when it is at or above the report's ``--fail-on-excess``,
exactly as ``Report.excess_verdict`` decides, so the formats agree with the exit code.
"""

from __future__ import annotations

from dataclasses import dataclass

from skycheck.excess_types import RISK_ORDER, ExcessItem, ExcessState, NeededRisk, Risk
from skycheck.models import Report
from skycheck.render._common import verb_rank

# Stable rule ids for CI formats, one per risk class (SARIF ruleId, JUnit class names).
RULE_IDS = {r: f"skycheck.excess.{r.value}" for r in RISK_ORDER}
RULE_TEXT = {
    Risk.CRITICAL: "Held beyond SkyPilot's need: critical (cluster takeover, every Secret)",
    Risk.HIGH: "Held beyond SkyPilot's need: high (Secrets, workloads, exec in a namespace)",
    Risk.MEDIUM: "Held beyond SkyPilot's need: medium (writes with a limited reach)",
    Risk.LOW: "Held beyond SkyPilot's need: low (reads)",
}


@dataclass(frozen=True, slots=True)
class ExcessRow:
    """Items that differ only in their verb."""

    risk: Risk
    target: str  # ``secrets -n default``, ``nodes (cluster-wide)``, ``* (any other resource)``
    verbs: tuple[str, ...]
    granted_by: str  # ``Role sky-sa-role via RoleBinding sky-sa-rb in namespace default``
    shared: bool
    reason: str
    needed: str
    risk_id: str

    @property
    def text(self) -> str:
        return f"{self.target}: {', '.join(self.verbs)}"


def _target(item: ExcessItem) -> str:
    described = item.describe()
    return described[len(item.verb) + 1 :]


def excess_rows(report: Report) -> tuple[ExcessRow, ...]:
    """The report's excess as rows, worst first (empty without an audit)."""
    if report.excess is None:
        return ()
    rows: dict[tuple[object, ...], list[ExcessItem]] = {}
    for item in report.excess.items:
        key = (
            item.risk,
            _target(item),
            item.granted_by,
            item.needed,
            item.reason,
            item.risk_id,
        )
        rows.setdefault(key, []).append(item)
    out = []
    for (risk, target, _, needed, reason, risk_id), items in rows.items():
        assert isinstance(risk, Risk)
        verbs = tuple(sorted({i.verb for i in items}, key=verb_rank))
        out.append(
            ExcessRow(
                risk=risk,
                target=str(target),
                verbs=verbs,
                granted_by="; ".join(g.describe() for g in items[0].granted_by),
                shared=any(g.shared for g in items[0].granted_by),
                reason=str(reason),
                needed=str(needed),
                risk_id=str(risk_id),
            )
        )
    return tuple(sorted(out, key=lambda r: (-r.risk.rank, r.target, r.granted_by)))


def row_gates(report: Report, row: ExcessRow) -> bool:
    """Whether this row fails the gate (at or above ``--fail-on-excess``)."""
    level = report.fail_on_excess
    return report.gates and level is not None and row.risk.at_least(level)


def summary_line(report: Report) -> str:
    """``Excess: 0 critical, 6 high, 14 medium, 21 low (complete, from manifests)``."""
    e = report.excess
    if e is None:
        return ""
    if e.state is ExcessState.UNKNOWN:
        return "Excess: unknown (what the identity holds could not be read)"
    counts = ", ".join(f"{n} {risk}" for risk, n in e.counts().items())
    body = counts if e.items else "none"
    state = "" if e.state is ExcessState.COMPLETE else f"{e.state.value}, "
    gate = f"; fails at {report.fail_on_excess.value} and above" if report.fail_on_excess else ""
    return f"Excess: {body} ({state}from {e.source}{gate})"


@dataclass(frozen=True, slots=True)
class NeededRow:
    risk: Risk
    target: str
    verbs: tuple[str, ...]
    reason: str
    why: str


def needed_rows(report: Report) -> tuple[NeededRow, ...]:
    """The risky permissions SkyPilot needs, one row per resource and scope."""
    if report.excess is None:
        return ()
    rows: dict[tuple[Risk, str, str, str], list[NeededRisk]] = {}
    for n in report.excess.needed:
        res = f"{n.resource}.{n.group}" if n.group else n.resource
        if n.subresource:
            res += f"/{n.subresource}"
        target = res + (f" {n.name}" if n.name else "")
        target += f" -n {n.namespace}" if n.namespace else " (cluster-wide)"
        rows.setdefault((n.risk, target, n.reason, n.why), []).append(n)
    return tuple(
        NeededRow(risk, target, tuple(sorted({n.verb for n in ns}, key=verb_rank)), reason, why)
        for (risk, target, reason, why), ns in sorted(
            rows.items(), key=lambda kv: (-kv[0][0].rank, kv[0][1])
        )
    )
