"""Markdown (``-o markdown``) for pull-request comments and job summaries.

GitHub-flavoured Markdown: a headline with a plain-text verdict marker
(``[PASS]``, ``[FAIL]``, ``[UNKNOWN]``; no emoji), who was checked where, a
table of features, a table of missing permissions (verbs collapsed per rule)
with why SkyPilot needs them and what breaks, a table of checks that could
not be made, warnings and notes, and, when a fix manifest was generated, the
command to apply it and the manifest in a collapsed block.

Several reports: an overview table (one row per report), then one section per
report with the same content one heading level down.

Text from the catalogue and the cluster is escaped for table cells: ``|``,
``<``, ``>``, ``*``, ``_``, ``[``, ``]`` and ``\\``; backquoted spans are kept
as code (only ``|`` is escaped inside them, as GFM tables require).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from skycheck.fixit import fix_namespaces
from skycheck.models import Decision, Report, Verdict, gate_verdict
from skycheck.render._common import (
    RenderOptions,
    Reports,
    clean,
    count,
    finish,
    fix_command,
    group_by_rule,
    normalize,
    report_labels,
    resource_text,
    sorted_findings,
    subject_label,
)

_MARKER = {Verdict.PASS: "[PASS]", Verdict.FAIL: "[FAIL]", Verdict.UNKNOWN: "[UNKNOWN]"}
_SPECIAL = re.compile(r"([\\|<>*_\[\]])")


def escape(text: str) -> str:
    """Escape text for a GFM table cell, keeping `code spans` as code."""
    text = clean(text)
    parts = " ".join(text.split()).split("`")
    if len(parts) % 2 == 0:  # an unpaired backquote: treat it as text
        return _SPECIAL.sub(r"\\\1", " ".join(text.split())).replace("`", "\\`")
    out = []
    for i, part in enumerate(parts):
        if i % 2:
            out.append("`" + part.replace("|", "\\|") + "`")
        else:
            out.append(_SPECIAL.sub(r"\\\1", part))
    return "".join(out)


def _code(text: str, in_table: bool = True) -> str:
    """An inline code span that survives backquotes inside (and pipes, in a table cell)."""
    text = " ".join(clean(text).split())
    if in_table:
        text = text.replace("|", "\\|")
    fence = "`"
    while fence in text:
        fence += "`"
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _fence(text: str) -> str:
    fence = "```"
    while fence in text:
        fence += "`"
    return fence


def _headline(report: Report) -> str:
    c = count(report.findings)
    v = report.verdict
    if v is Verdict.PASS and not c.denied and not c.unknown:
        detail = f"all {c.total} checks granted"
    else:
        detail = f"{c.denied} of {c.total} checks denied, {c.unknown} could not be checked"
    return f"**{_MARKER[v]}** {detail}"


def _report_body(report: Report, options: RenderOptions, level: int, multi: bool) -> list[str]:
    h = "#" * level
    out = [_headline(report), ""]
    out.append(
        f"Subject {_code(subject_label(report.subject), False)} "
        f"({_code(report.subject.username, False)}), context "
        f"{_code(report.context, False) if report.context else '(none)'}, namespace "
        f"{_code(report.namespace, False) if report.namespace else '(cluster scope)'}, "
        f"method {report.method.value} ({report.mode}), fail-on {report.fail_on.value}"
        + (
            f", {report.skypilot.describe()}, profile {report.profile.value}."
            if report.skypilot
            else "."
        )
    )
    findings = sorted_findings(report)

    out += ["", f"{h} Features", ""]
    rows = []
    for fs in report.feature_statuses():
        c = count([f for f in findings if f.requirement.feature == fs.name])
        rows.append(
            [
                _code(fs.name),
                "required" if fs.required else "optional",
                _MARKER[fs.status] if fs.status else f"not applicable: {escape(fs.reason)}",
                str(c.denied),
                str(c.unknown),
                str(c.allowed),
            ]
        )
    out += _table(["Feature", "Gate", "Status", "Denied", "Unknown", "Granted"], rows)

    groups = group_by_rule(findings)
    denied = [g for g in groups if g.verbs(Decision.DENIED)]
    if denied:
        out += ["", f"{h} Missing permissions", ""]
        rows = [
            [
                _code(g.first.feature),
                "required" if g.first.required else "optional",
                _code(resource_text(g.first)),
                ", ".join(g.verbs(Decision.DENIED)),
                escape(g.first.why),
                escape(g.first.breaks),
            ]
            for g in sorted(denied, key=lambda g: not g.first.required)
        ]
        out += _table(["Feature", "Gate", "Resource", "Missing verbs", "Why", "Breaks"], rows)

    unknown = [g for g in groups if g.verbs(Decision.UNKNOWN)]
    if unknown:
        out += ["", f"{h} Could not check", ""]
        rows = [
            [
                _code(g.first.feature),
                "required" if g.first.required else "optional",
                _code(resource_text(g.first)),
                ", ".join(g.verbs(Decision.UNKNOWN)),
                escape("; ".join(g.errors)),
            ]
            for g in sorted(unknown, key=lambda g: not g.first.required)
        ]
        out += _table(["Feature", "Gate", "Resource", "Verbs", "Error"], rows)

    out += _excess_section(report, h)
    if report.warnings:
        out += ["", f"{h} Warnings", ""]
        out += [f"- {escape(w)}" for w in report.warnings]
    if report.notes:
        out += ["", f"{h} Notes", ""]
        out += [f"- {escape(n)}" for n in report.notes]
    if report.fix:
        out += ["", f"{h} To fix", ""]
        cmd = fix_command(
            options.fix_path,
            report.context if options.fix_per_context else None,
            fix_namespaces(report),
        )
        if options.fix_path:
            out.append(f"Apply the generated RBAC manifest: {_code(cmd, False)}")
        else:
            out.append(f"Write the manifest with `--fix PATH`, then run {_code(cmd, False)}.")
        manifest = clean(report.fix).rstrip("\n")
        fence = _fence(manifest)
        out += [
            "",
            "<details><summary>RBAC manifest</summary>",
            "",
            f"{fence}yaml",
            manifest,
            fence,
            "",
            "</details>",
        ]
    return out


def _excess_section(report: Report, h: str) -> list[str]:
    """With --excess: what is held beyond the need, then the risky needs to sign off."""
    if report.excess is None:
        return []
    from skycheck.render._excess import excess_rows, needed_rows, row_gates, summary_line

    out = ["", f"{h} Excess", "", escape(summary_line(report))]
    rows = [
        [
            row.risk.value + (" (fails)" if row_gates(report, row) else ""),
            _code(row.target),
            ", ".join(row.verbs),
            escape(row.granted_by + (" (shared)" if row.shared else "")),
            escape(row.reason),
            escape(row.needed),
        ]
        for row in excess_rows(report)
    ]
    if rows:
        out.append("")
        out += _table(["Risk", "Resource", "Verbs", "Granted by", "Why risky", "Note"], rows)
    if report.excess.notes:
        out.append("")
        out += [f"- {escape(n)}" for n in report.excess.notes]
    needed = [
        [
            n.risk.value,
            _code(n.target),
            ", ".join(n.verbs),
            escape(n.reason or "(default class)"),
            escape(n.why),
        ]
        for n in needed_rows(report)
    ]
    if needed:
        out += ["", f"{h} Risky permissions SkyPilot needs", ""]
        out += _table(["Risk", "Resource", "Verbs", "Why risky", "Why SkyPilot needs it"], needed)
    return out


def _overview(reports: Sequence[Report], labels: Sequence[str]) -> list[str]:
    rows = []
    for label, r in zip(labels, reports, strict=True):
        c = count(r.findings)
        rows.append(
            [
                escape(label),
                _code(subject_label(r.subject)),
                _code(r.namespace) if r.namespace else "(cluster scope)",
                _MARKER[r.verdict],
                str(c.denied),
                str(c.unknown),
                str(c.total),
            ]
        )
    return _table(
        ["Context", "Subject", "Namespace", "Verdict", "Denied", "Unknown", "Checks"], rows
    )


def render_markdown(reports: Reports, options: RenderOptions | None = None) -> str:
    options = options or RenderOptions()
    items, multi = normalize(reports, bool(options and options.summary))
    if not multi:
        out = ["## skycheck: SkyPilot RBAC check", ""]
        out += _report_body(items[0], options, 3, multi=False)
        return finish("\n".join(out))
    labels = report_labels(items)
    v = gate_verdict(items)
    out = ["## skycheck: SkyPilot RBAC check", "", f"**{_MARKER[v]}** {len(items)} reports", ""]
    out += _overview(items, labels)
    for label, r in zip(labels, items, strict=True):
        out += ["", f"### {escape(label)}", ""]
        out += _report_body(r, options, 4, multi=True)
    return finish("\n".join(out))
