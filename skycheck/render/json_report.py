"""The JSON report (``-o json``): the machine contract of DESIGN.md section 3.

``report_to_dict`` builds the single-report document, schemaVersion 1, with
the contract's keys in the contract's order. Per check it adds ``ruleId``,
``why``, ``breaks``, ``source`` and ``evaluationError`` ("" when there was
none), ``effect`` (fatal, degrades or documented, for the SkyPilot version
checked), ``lost`` (what a denied "degrades" check costs) and ``location`` (offline: the
file and line it concerns, see ``skycheck.locate``; live: the identity and context, no
path); at the top level it
adds ``failOn`` and ``profile`` (the verdict depends on both), ``notes`` and
``skypilot`` (the version checked against and where that came from); with
``--excess``, ``excess`` (what the identity holds beyond the need) and
``excessSummary`` (counts by risk, how it was read, the risky needs). A feature
that does not concern the identity has status ``not-applicable`` and a
``reason``. The contract says "at least", so these additions keep schemaVersion 1;
``report.schema.json`` beside this file describes the whole document and the
tests validate real output against it.

Several reports (a list, e.g. several contexts) give
``{"schemaVersion": 1, "verdict": <worst>, "reports": [<single form>, ...]}``;
a lone Report keeps the single form. An audit across a cluster (``--all-subjects``,
``--service-accounts-of``) adds ``summary``: one row per identity (verdict, missing,
excess by risk) and the totals; its list may be empty. Checks are sorted (see ``_common``),
so the output is byte-for-byte deterministic.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from skycheck.excess_types import ExcessItem, Grant, NeededRisk
from skycheck.models import (
    SCHEMA_VERSION,
    FeatureStatus,
    Finding,
    Location,
    Report,
    gate_verdict,
)
from skycheck.render._common import (
    RenderOptions,
    Reports,
    finish,
    normalize,
    sorted_findings,
    subject_label,
)


def report_schema() -> dict[str, Any]:
    """The JSON Schema of this document (``report.schema.json``, shipped in the wheel)."""
    # Beside this module, where importlib.resources.files("skycheck.render") finds it, without
    # importing importlib.resources on every -o json run (tempfile, shutil, random: 3 ms).
    text = (Path(__file__).resolve().parent / "report.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def _location(loc: Location) -> dict[str, Any]:
    obj = loc.object
    return {
        "path": loc.path,
        "line": loc.line,
        "object": None if obj is None else {"kind": obj[0], "namespace": obj[1], "name": obj[2]},
        "identity": loc.identity,
        "context": loc.context,
        "basis": loc.basis.value,
        "input": loc.input,
    }


def _check(report: Report, f: Finding) -> dict[str, Any]:
    r = f.requirement
    return {
        "id": r.id,
        "feature": r.feature,
        "required": r.required,
        **r.permission_json(),
        "decision": f.decision.value,
        "reason": f.reason,
        "ruleId": r.rule_id,
        "why": r.why,
        "breaks": r.breaks,
        "source": r.source,
        "evaluationError": f.evaluation_error,
        "effect": r.effect.value,
        "lost": r.lost,
        "account": r.account,
        "precondition": f.precondition is not None,
        "location": _location(report.location_of(f)),
    }


def _feature(fs: FeatureStatus) -> dict[str, Any]:
    if fs.status is None:
        return {
            "name": fs.name,
            "required": False,
            "status": "not-applicable",
            "reason": fs.reason,
        }
    return {"name": fs.name, "required": fs.required, "status": fs.status.value}


def report_to_dict(report: Report) -> dict[str, Any]:
    """One report as the schemaVersion 1 document (plain JSON types only)."""
    s = report.subject
    return {
        "schemaVersion": SCHEMA_VERSION,
        "verdict": report.verdict.value,
        "mode": report.mode,
        "method": report.method.value,
        "context": report.context,
        "namespace": report.namespace,
        "subject": {
            "kind": s.kind,
            "name": s.name,
            "namespace": s.namespace,
            "username": s.username,
            "groups": sorted(s.groups),
        },
        "features": [_feature(fs) for fs in report.feature_statuses()],
        "checks": [_check(report, f) for f in sorted_findings(report)],
        "warnings": list(report.warnings),
        "fix": report.fix,
        "failOn": report.fail_on.value,
        "notes": list(report.notes),
        "skypilot": (
            {
                "version": report.skypilot.named,
                "provenBy": report.skypilot.version,
                "proven": report.skypilot.proven,
                "source": report.skypilot.source,
            }
            if report.skypilot
            else None
        ),
        "profile": report.profile.value,
        "gates": report.gates,
        "preconditions": [
            {
                "feature": p.feature,
                "namespace": p.namespace,
                "state": p.state.value,
                "owner": p.owner,
                "mayCreate": None if p.may_create is None else p.may_create.value,
                "reason": p.why,
            }
            for p in report.preconditions
        ],
        **excess_fields(report),
    }


def _grant(g: Grant) -> dict[str, Any]:
    return {
        "roleKind": g.role_kind,
        "role": g.role,
        "bindingKind": g.binding_kind,
        "binding": g.binding,
        "namespace": g.namespace,
        "shared": g.shared,
        "rule": g.rule,
    }


def _excess_item(i: ExcessItem) -> dict[str, Any]:
    return {
        **i.permission_json(),
        "risk": i.risk.value,
        "grantedBy": [_grant(g) for g in i.granted_by],
        "riskId": i.risk_id,
        "reason": i.reason,
        "needed": i.needed,
        "nonResourceURL": i.non_resource_url,
        "wildcard": i.wildcard,
    }


def _needed_risk(n: NeededRisk) -> dict[str, Any]:
    return {
        "check": n.check_id,
        **n.permission_json(),
        "risk": n.risk.value,
        "riskId": n.risk_id,
        "reason": n.reason,
        "why": n.why,
    }


def excess_fields(report: Report) -> dict[str, Any]:
    """The excess audit's keys (``--excess`` only): ``excess``, ``excessSummary``."""
    e = report.excess
    if e is None:
        return {}
    return {
        "excess": [_excess_item(i) for i in e.items],
        "excessSummary": {
            "state": e.state.value,
            "source": e.source,
            "counts": e.counts(),
            "failOnExcess": report.fail_on_excess.value if report.fail_on_excess else None,
            "verdict": report.excess_verdict().value,
            "notes": list(e.notes),
            "neededRisks": [_needed_risk(n) for n in e.needed],
            "leastPrivilege": e.least_privilege,
        },
    }


def summary_to_dict(reports: Sequence[Report]) -> dict[str, Any]:
    """An audit's ``summary``: the verdicts and excess totals, and one row per identity
    (in the order of ``reports``)."""
    from skycheck.subjects import summarize

    summary = summarize(reports)
    return {
        "identities": len(summary.rows),
        "verdicts": summary.verdicts(),
        "excess": summary.excess_totals(),
        "rows": [
            {
                "identity": subject_label(r.report.subject),
                "kind": r.report.subject.kind,
                "name": r.report.subject.name,
                "subjectNamespace": r.report.subject.namespace,
                "username": r.report.subject.username,
                "namespace": r.report.namespace,
                "verdict": r.verdict.value,
                "missing": r.missing,
                "unknown": r.unknown,
                "excess": r.excess,
            }
            for r in summary.rows
        ],
    }


def reports_to_dict(reports: Reports, summary: bool = False) -> dict[str, Any]:
    """The single form for a Report, the multi form for a list of them; with ``summary``
    (an audit across a cluster) the multi form, possibly empty, with its ``summary``."""
    if summary:
        listed = [reports] if isinstance(reports, Report) else list(reports)
        return {
            "schemaVersion": SCHEMA_VERSION,
            "verdict": gate_verdict(listed).value,
            "reports": [report_to_dict(r) for r in listed],
            "summary": summary_to_dict(listed),
        }
    items, multi = normalize(reports)
    if not multi:
        return report_to_dict(items[0])
    return {
        "schemaVersion": SCHEMA_VERSION,
        "verdict": gate_verdict(items).value,
        "reports": [report_to_dict(r) for r in items],
    }


def render_json(reports: Reports, options: RenderOptions | None = None) -> str:
    summary = options.summary if options else False
    doc = reports_to_dict(reports, summary)
    if summary:
        return finish(_audit_text(doc))
    return finish(json.dumps(doc, indent=2, sort_keys=False))


def _audit_text(doc: dict[str, Any]) -> str:
    """An audit's document with each report on one line (``grep`` finds an identity's, and
    ``json`` writes a line with its C encoder, where ``indent`` takes its pure-Python one:
    several times slower over a thousand reports); the rest indented as usual."""
    lines = ["{"]
    for k, v in doc.items():
        if k == "reports":
            if not v:
                lines.append('  "reports": [],')
                continue
            lines.append('  "reports": [')
            lines.append(",\n".join("    " + json.dumps(r) for r in v))
            lines.append("  ],")
        else:
            text = json.dumps(v, indent=2).replace("\n", "\n  ")
            lines.append(f"  {json.dumps(k)}: {text},")
    lines[-1] = lines[-1].removesuffix(",")
    lines.append("}")
    return "\n".join(lines)
