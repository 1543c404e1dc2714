"""SARIF 2.1.0 (``-o sarif``) for GitHub code scanning and other SARIF viewers.

One run, always, even for several reports (contexts): the run is one
skycheck invocation. GitHub code scanning rejects uploads that hold several
runs of the same tool and category (since mid-2025), and a single run keeps
the uploader's ``category`` in charge. Each report is one entry of
``run.invocations`` (its context, subject and verdict in ``properties``, its
warnings as ``toolExecutionNotifications``); results carry their report's
context in ``properties`` and in their fingerprint, so alerts stay distinct.

``tool.driver.rules`` is the catalogue: one rule per catalogue rule of the
checked features, sorted by id (short description = why it is needed; full
description = why plus the verbs and scope; help = what breaks and the
source; tagged with its feature). Rule data comes from the bound
requirements, which carry the catalogue's text.

One result per denied or undecided check: ``ruleId`` is the catalogue rule
id, ``level`` is ``error`` when the check gates the verdict (by default: a
required feature) and ``warning`` otherwise. Undecided checks keep
``kind: fail`` (the default): SARIF's ``open`` kind would force level
``none`` and hide a check we could not make, and we fail closed.

With ``--excess``, each excess row (a risk class, a resource and scope, its verbs) is a
result of the rule ``skycheck.excess.<class>``, ``warning`` unless ``--fail-on-excess``
makes it gate (``error``); those point at ``rules/risk.yaml``.

Code scanning places alerts on files of the scanned repository, so an offline result
points at the user's manifest (``skycheck.locate``): ``artifactLocation.uri`` relative to
the working directory with ``uriBaseId`` ``%SRCROOT%`` (a ``file://`` URI when the file is
outside it), and ``region.startLine`` the line of the rule or document it concerns; the
object there is a second logical location. Code scanning rejects a result without a
physical location, so a live result (and one read from standard input, which has no path)
points at its rules file ``rules/<feature>.yaml``, line 1, and its message says the identity
and context (or the line of standard input). Every result also has a logical location
naming the namespace (or the cluster) and the subject.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import quote

from skycheck import __version__
from skycheck.models import Decision, Finding, Location, Report, Requirement
from skycheck.render._common import (
    RenderOptions,
    Reports,
    file_location,
    finish,
    gates,
    location_text,
    normalize,
    object_text,
    report_labels,
    sorted_findings,
    subject_label,
    verb_rank,
)

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_VERSION = "2.1.0"
FINGERPRINT_KEY = "skycheckCheck/v1"
SRCROOT = "%SRCROOT%"


def _rules_file(feature: str) -> str:
    # The catalogue enforces that rules/<feature>.yaml declares <feature> (Feature.source_file).
    return f"rules/{feature}.yaml"


def _scope_text(report: Report, req: Requirement) -> str:
    """Where a rule applies, independent of the namespace a particular run checked."""
    if not req.namespace:
        return "cluster scope"
    if req.namespace == report.namespace:
        return "the SkyPilot namespace (-n)"
    return f"namespace {req.namespace}"


def _resource(req: Requirement) -> str:
    res = req.resource_path
    if req.group:
        res += f" (API group {req.group})"
    if req.name:
        res += f" named {req.name}"
    return res


def rule_name(rule_id: str) -> str:
    """A readable name, distinct from the opaque id: core.pods-exec -> CorePodsExec."""
    return "".join(part.capitalize() for part in re.split(r"[^A-Za-z0-9]+", rule_id) if part)


def _rule(req: Requirement, scope: str, verbs: list[str], error: bool) -> dict[str, Any]:
    verb_text = ", ".join(sorted(verbs, key=verb_rank))
    return {
        "id": req.rule_id,
        "name": rule_name(req.rule_id),
        "shortDescription": {"text": req.why},
        "fullDescription": {"text": f"{req.why} Needs {verb_text} on {_resource(req)} in {scope}."},
        "help": {
            "text": f"What breaks without it: {req.breaks}\nSource: {req.source}",
            "markdown": f"**What breaks without it:** {req.breaks}\n\n**Source:** {req.source}",
        },
        "defaultConfiguration": {"level": "error" if error else "warning"},
        "properties": {
            "tags": ["kubernetes", "rbac", "skypilot", req.feature],
            "feature": req.feature,
        },
    }


def _rules(reports: tuple[Report, ...]) -> list[dict[str, Any]]:
    first: dict[str, Requirement] = {}
    scope: dict[str, str] = {}
    verbs: dict[str, list[str]] = {}
    required: dict[str, bool] = {}
    for report in reports:
        for f in sorted_findings(report):
            r = f.requirement
            if r.rule_id not in first:
                first[r.rule_id] = r
                scope[r.rule_id] = _scope_text(report, r)
            if r.verb not in verbs.setdefault(r.rule_id, []):
                verbs[r.rule_id].append(r.verb)
            required[r.rule_id] = required.get(r.rule_id, False) or r.required
    return [_rule(first[i], scope[i], verbs[i], required[i]) for i in sorted(first)]


def _fingerprint(report: Report, req: Requirement) -> str:
    key = "\x1f".join(
        (report.context or "", report.subject.username, req.id, req.namespace, req.name)
    )
    return hashlib.sha256(key.encode()).hexdigest()


def _physical(req: Requirement, loc: Location) -> dict[str, Any]:
    """The user's file and line where there is one, else the rule's catalogue file."""
    at = file_location(loc)
    if at is None:
        return {
            "artifactLocation": {"uri": _rules_file(req.feature)},
            "region": {"startLine": 1},
        }
    path, line = at
    if path.startswith("/"):  # outside the working directory
        artifact = {"uri": PurePosixPath(path).as_uri()}
    else:
        artifact = {"uri": quote(path), "uriBaseId": SRCROOT}
    return {"artifactLocation": artifact, "region": {"startLine": line}}


def _message(report: Report, f: Finding, label: str | None) -> str:
    r = f.requirement
    who = subject_label(report.subject)
    where = f"in namespace {r.namespace}" if r.namespace else "cluster-wide"
    what = f"{r.verb} {_resource(r)} {where}"
    ctx = f" (context {label})" if label else ""
    optional = "" if r.required else f" Feature {r.feature} is optional."
    if f.decision is Decision.DENIED:
        text = f"{who} cannot {what}{ctx}. {r.why} Breaks: {r.breaks}{optional}"
    else:
        error = f.evaluation_error or f.reason or "no reason given"
        text = f"Could not check whether {who} can {what}{ctx}: {error}. {r.why}{optional}"
    loc = report.location_of(f)
    if loc.input == "cluster":
        return f"{text} Checked as {location_text(loc)}."
    if loc.input in ("file", "stdin"):
        return f"{text} At {location_text(loc)}."
    return text


def _result(
    report: Report, f: Finding, rule_index: dict[str, int], label: str | None
) -> dict[str, Any]:
    r = f.requirement
    where = label or report.context or "(current context)"
    logical = f"{where}/{r.namespace or '(cluster)'}/{report.subject.username}"
    loc = report.location_of(f)
    logical_locations: list[dict[str, Any]] = [
        {
            "name": r.namespace or "(cluster)",
            "fullyQualifiedName": logical,
            "kind": "namespace" if r.namespace else "resource",
        }
    ]
    if loc.object is not None:
        logical_locations.append(
            {
                "name": loc.object[2],
                "fullyQualifiedName": object_text(loc.object),
                "kind": "resource",
            }
        )
    return {
        "ruleId": r.rule_id,
        "ruleIndex": rule_index[r.rule_id],
        "level": "error" if gates(report, f) else "warning",
        "message": {"text": _message(report, f, label)},
        "locations": [
            {"physicalLocation": _physical(r, loc), "logicalLocations": logical_locations}
        ],
        "partialFingerprints": {FINGERPRINT_KEY: _fingerprint(report, r)},
        "properties": {
            "checkId": r.id,
            "feature": r.feature,
            "required": r.required,
            "decision": f.decision.value,
            "effect": r.effect.value,
            **r.permission_json(),
            "context": report.context,
            "subject": report.subject.username,
            "locationBasis": loc.basis.value,
            "input": loc.input,
        },
    }


def _invocation(report: Report, label: str) -> dict[str, Any]:
    return {
        "executionSuccessful": True,
        "toolExecutionNotifications": [
            {"level": "warning", "message": {"text": w}} for w in report.warnings
        ],
        "properties": {
            "label": label,
            "context": report.context,
            "namespace": report.namespace,
            "subject": report.subject.username,
            "subjectKind": report.subject.kind,
            "mode": report.mode,
            "method": report.method.value,
            "failOn": report.fail_on.value,
            "verdict": report.verdict.value,
            "profile": report.profile.value,
            "skypilotVersion": report.skypilot.named if report.skypilot else None,
            "skypilotProvenBy": report.skypilot.version if report.skypilot else None,
            "skypilotProven": report.skypilot.proven if report.skypilot else None,
            "notApplicable": dict(report.not_applicable),
        },
    }


def report_to_sarif(reports: Reports, allow_empty: bool = False) -> dict[str, Any]:
    items, multi = normalize(reports, allow_empty)
    labels = report_labels(items)
    rules = _rules(items) + _excess_rules(items)
    rule_index = {rule["id"]: i for i, rule in enumerate(rules)}
    results = [
        _result(report, f, rule_index, label if multi else None)
        for label, report in zip(labels, items, strict=True)
        for f in sorted_findings(report)
        if f.decision is not Decision.ALLOWED
    ]
    results += [
        result
        for label, report in zip(labels, items, strict=True)
        for result in _excess_results(report, rule_index, label if multi else None)
    ]
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": "skycheck",
                "version": __version__,
                "semanticVersion": __version__,
                "rules": rules,
            }
        },
        "invocations": [_invocation(r, label) for label, r in zip(labels, items, strict=True)],
        "results": results,
        "columnKind": "unicodeCodePoints",
    }
    return {"$schema": SARIF_SCHEMA, "version": SARIF_VERSION, "runs": [run]}


# --- the excess audit (--excess): one rule per risk class, one result per excess row ------


def _excess_rules(reports: tuple[Report, ...]) -> list[dict[str, Any]]:
    """The rules ``skycheck.excess.<class>`` of the classes some report's excess holds."""
    from skycheck.render._excess import RULE_IDS, RULE_TEXT

    held = {i.risk for r in reports if r.excess for i in r.excess.items}
    levels = {r.fail_on_excess for r in reports}
    out = []
    for risk, rule_id in RULE_IDS.items():
        if risk not in held:
            continue
        gating = any(level is not None and risk.at_least(level) for level in levels)
        out.append(
            {
                "id": rule_id,
                "name": rule_name(rule_id),
                "shortDescription": {"text": RULE_TEXT[risk]},
                "fullDescription": {
                    "text": f"{RULE_TEXT[risk]}. The identity holds a permission rated "
                    f"{risk.value} by rules/risk.yaml that the checked features do not need."
                },
                "help": {
                    "text": "Remove the grant from the role or binding named, or narrow it to "
                    "what SkyPilot needs (skycheck manifest). See docs/excess.md.",
                    "markdown": "Remove the grant from the role or binding named, or narrow "
                    "it to what SkyPilot needs (`skycheck manifest`). See docs/excess.md.",
                },
                "defaultConfiguration": {"level": "error" if gating else "warning"},
                "properties": {"tags": ["kubernetes", "rbac", "excess", risk.value]},
            }
        )
    return out


def _excess_results(
    report: Report, rule_index: dict[str, int], label: str | None
) -> list[dict[str, Any]]:
    from skycheck.render._excess import RULE_IDS, excess_rows, row_gates

    who = subject_label(report.subject)
    ctx = f" (context {label})" if label else ""
    where = label or report.context or "(current context)"
    out = []
    for row in excess_rows(report):
        rule_id = RULE_IDS[row.risk]
        text = (
            f"{who} holds {', '.join(row.verbs)} on {row.target}{ctx} beyond SkyPilot's need "
            f"({row.risk.value}), from {row.granted_by}."
        )
        if row.reason:
            text += f" {row.reason}"
        if row.needed:
            text += f" Note: {row.needed}."
        key = "\x1f".join((report.context or "", report.subject.username, row.target, *row.verbs))
        out.append(
            {
                "ruleId": rule_id,
                "ruleIndex": rule_index[rule_id],
                "level": "error" if row_gates(report, row) else "warning",
                "message": {"text": text},
                "locations": [
                    {
                        "physicalLocation": {
                            "artifactLocation": {"uri": "rules/risk.yaml"},
                            "region": {"startLine": 1},
                        },
                        "logicalLocations": [
                            {
                                "name": row.target,
                                "fullyQualifiedName": f"{where}/{row.target}/"
                                f"{report.subject.username}",
                                "kind": "resource",
                            }
                        ],
                    }
                ],
                "partialFingerprints": {FINGERPRINT_KEY: hashlib.sha256(key.encode()).hexdigest()},
                "properties": {
                    "excess": True,
                    "risk": row.risk.value,
                    "riskId": row.risk_id,
                    "verbs": list(row.verbs),
                    "target": row.target,
                    "grantedBy": row.granted_by,
                    "shared": row.shared,
                    "context": report.context,
                    "subject": report.subject.username,
                },
            }
        )
    return out


def render_sarif(reports: Reports, options: RenderOptions | None = None) -> str:
    audit = bool(options and options.summary)
    return finish(json.dumps(report_to_sarif(reports, audit), indent=2, sort_keys=False))
