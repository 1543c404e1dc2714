"""The human report (``-o table``, the default), drawn with rich.

Layout, top to bottom:

- a header: verdict, subject, context, namespace, method (and mode), fail-on,
  and the check counts;
- per feature, in catalogue order, a summary line (status, required or
  optional, counts); for a feature that did not pass, one row per catalogue
  rule: denied rules first, each with the verbs it lacks, why SkyPilot needs
  it and what breaks; then undecided rules with the error; then granted rules,
  one short line each. Verbs are collapsed per rule, so the ~98 checks of the
  full catalogue stay at about 30 rows;
- notes, warnings, and, when a fix manifest was generated, the command that
  applies it.

Several reports: one summary line per report, then each report's details. An audit
across a cluster (``RenderOptions.summary``) is its summary alone: one line per identity
with its verdict, missing checks and excess by risk class (``-o json`` has the details).
Colour only when asked; without it the output is plain text with no escape
codes and no trailing spaces, which is what the golden files hold.
"""

from __future__ import annotations

from collections.abc import Sequence
from io import StringIO

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from skycheck.fixit import fix_namespaces
from skycheck.models import Decision, Report, Verdict, gate_verdict
from skycheck.render._common import (
    RenderOptions,
    Reports,
    RuleGroup,
    clean,
    count,
    finish,
    fix_hint,
    group_by_rule,
    normalize,
    problems_first,
    resource_text,
    sorted_findings,
    subject_label,
)

_VERDICT_STYLE = {
    Verdict.PASS: "bold green",
    Verdict.FAIL: "bold red",
    Verdict.UNKNOWN: "bold yellow",
}
_MARKER = {Decision.DENIED: "MISSING", Decision.UNKNOWN: "UNKNOWN", Decision.ALLOWED: "ok"}
_MARKER_STYLE = {Decision.DENIED: "red", Decision.UNKNOWN: "yellow", Decision.ALLOWED: "green"}


def _counts_text(denied: int, unknown: int, total: int) -> str:
    if not denied and not unknown:
        return "the 1 check granted" if total == 1 else f"all {total} checks granted"
    parts = [f"{denied} denied"]
    if unknown:
        parts.append(f"{unknown} unknown")
    return f"{', '.join(parts)} of {total} check{'' if total == 1 else 's'}"


def _header(report: Report) -> Text:
    c = count(report.findings)
    v = report.verdict
    text = Text("skycheck ")
    text.append(v.value.upper(), style=_VERDICT_STYLE[v])
    text.append(f"  {clean(subject_label(report.subject))}", style="bold")
    text.append(f"\n  context {clean(report.context or '(none)')}")
    text.append(f"  namespace {clean(report.namespace or '(cluster scope)')}")
    text.append(f"  method {report.method.value} ({report.mode})")
    text.append(f"  fail-on {report.fail_on.value}")
    if report.skypilot:
        text.append(f"\n  {report.skypilot.describe()}  profile {report.profile.value}")
    text.append(f"\n  {_counts_text(c.denied, c.unknown, c.total)}")
    return text


def _kv(key: str, value: str) -> Table:
    grid = Table.grid(padding=(0, 1))
    grid.add_column(no_wrap=True, style="dim")
    grid.add_column(overflow="fold")
    grid.add_row(key, clean(value))
    return grid


def _with_effect(group: RuleGroup, verb: str) -> str:
    """``verb``, or ``verb (documented)`` / ``verb (degrades)`` when SkyPilot survives a 403."""
    for f in group.findings:
        if f.requirement.verb == verb and f.requirement.effect.value != "fatal":
            return f"{verb} ({f.requirement.effect.value})"
    return verb


def _marker(group: RuleGroup) -> Text:
    """MISSING for a denied check SkyPilot cannot do without; LOSES (degrades) or DOCS
    (documented only) when every denied verb of the row is one SkyPilot survives."""
    d = group.worst
    denied = [f for f in group.findings if f.decision is Decision.DENIED]
    if d is Decision.DENIED and all(f.requirement.effect.value != "fatal" for f in denied):
        if any(f.requirement.effect.value == "degrades" for f in denied):
            return Text("LOSES", style="yellow")
        return Text("DOCS", style="dim")
    return Text(_MARKER[d], style=_MARKER_STYLE[d])


def _rule_row(group: RuleGroup) -> tuple[Text, RenderableType]:
    d = group.worst
    marker = _marker(group)
    head = Text(clean(resource_text(group.first)) + ": ")
    if d is Decision.ALLOWED:
        head.append(", ".join(group.verbs(Decision.ALLOWED)))
        head.stylize("dim")
        return marker, head
    denied, unknown = group.verbs(Decision.DENIED), group.verbs(Decision.UNKNOWN)
    if denied:
        head.append(", ".join(_with_effect(group, v) for v in denied), style="bold")
    if unknown:
        head.append(("; " if denied else "") + "could not check " + ", ".join(unknown))
    granted = group.verbs(Decision.ALLOWED)
    if granted:
        head.append(f" (granted: {', '.join(granted)})", style="dim")
    lines: list[RenderableType] = [head]
    if denied:
        lines.append(_kv("why   ", group.first.why))
        lines.append(_kv("breaks", group.first.breaks))
        if group.first.lost:
            lines.append(_kv("lost  ", group.first.lost))
        for hint in group.hints:
            lines.append(_kv("hint  ", hint))
    for err in group.errors:
        lines.append(_kv("error ", err))
    return marker, Group(*lines)


def _feature(
    report: Report, name: str, required: bool, status: Verdict | None, reason: str = ""
) -> list[RenderableType]:
    """The feature's summary line, then (unless it passed) one row per rule, problems first."""
    findings = [f for f in sorted_findings(report) if f.requirement.feature == name]
    c = count(findings)
    line = Text()
    line.append(name, style="bold")
    if status is None:
        line.append("  n/a       ")
        line.append("NOT APPLICABLE", style="dim")
        line.append(f"  {reason}")
        return [line]
    line.append("  required  " if required else "  optional  ")
    line.append(status.value.upper(), style=_VERDICT_STYLE[status])
    line.append(f"  {_counts_text(c.denied, c.unknown, c.total)}")
    if status is Verdict.PASS and not c.denied and not c.unknown:
        return [line]
    grid = Table.grid(padding=(0, 2), pad_edge=True)
    grid.add_column(no_wrap=True, min_width=7)
    grid.add_column(overflow="fold")
    for group in problems_first(group_by_rule(findings)):
        grid.add_row(*_rule_row(group))
    return [line, grid]


def _details(report: Report, options: RenderOptions, multi: bool) -> list[RenderableType]:
    """Header, features, notes, warnings, fix hint; a blank line between blocks."""
    blocks: list[list[RenderableType]] = [[_header(report)]]
    features: list[RenderableType] = []
    for fs in report.feature_statuses():
        lines = _feature(report, fs.name, fs.required, fs.status, fs.reason)
        if len(lines) > 1 and features:  # set a detailed feature apart from the one above
            blocks.append(features)
            features = []
        features += lines
        if len(lines) > 1:
            blocks.append(features)
            features = []
    if features:
        blocks.append(features)
    blocks += _excess_blocks(report)
    if report.notes:
        blocks.append([Text("Notes:", style="bold"), _bullets(report.notes)])
    if report.warnings:
        blocks.append([Text("Warnings:", style="bold yellow"), _bullets(report.warnings)])
    if report.fix:
        hint = fix_hint(
            options.fix_path,
            report.context if options.fix_per_context else None,
            fix_namespaces(report),
        )
        blocks.append([Text(clean(hint))])
    out: list[RenderableType] = []
    for i, block in enumerate(blocks):
        if i:
            out.append(Text(""))
        out += block
    return out


_RISK_STYLE = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "dim"}


def _excess_blocks(report: Report) -> list[list[RenderableType]]:
    """With --excess: what is held beyond the need, then the risky needs to sign off."""
    if report.excess is None:
        return []
    from skycheck.render._excess import excess_rows, needed_rows, summary_line

    head = Text(clean(summary_line(report)), style="bold")
    grid = Table.grid(padding=(0, 2), pad_edge=True)
    grid.add_column(no_wrap=True, min_width=8)
    grid.add_column(overflow="fold")
    for row in excess_rows(report):
        lines: list[RenderableType] = [Text(clean(row.text))]
        if row.reason:
            lines.append(_kv("risk  ", row.reason))
        lines.append(_kv("from  ", row.granted_by + (" (shared)" if row.shared else "")))
        if row.needed:
            lines.append(_kv("note  ", row.needed))
        marker = Text(row.risk.value.upper(), style=_RISK_STYLE[row.risk.value])
        grid.add_row(marker, Group(*lines))
    block: list[RenderableType] = [head, grid]
    if report.excess.notes:
        block.append(_bullets(report.excess.notes))
    out = [block]
    needed = needed_rows(report)
    if needed:
        grid = Table.grid(padding=(0, 2), pad_edge=True)
        grid.add_column(no_wrap=True, min_width=8)
        grid.add_column(overflow="fold")
        for n in needed:
            lines = [
                Text(clean(f"{n.target}: {', '.join(n.verbs)}")),
                _kv("risk  ", n.reason or "(default class)"),
                _kv("why   ", n.why),
            ]
            grid.add_row(Text(n.risk.value.upper(), style=_RISK_STYLE[n.risk.value]), Group(*lines))
        out.append([Text("Risky permissions SkyPilot needs (to sign off):", style="bold"), grid])
    return out


def _bullets(items: Sequence[str]) -> Table:
    """A bulleted list whose wrapped lines keep their indent."""
    grid = Table.grid()
    grid.add_column(no_wrap=True)
    grid.add_column(overflow="fold")
    for item in items:
        grid.add_row("  - ", clean(item))
    return grid


def _overview(reports: Sequence[Report]) -> list[RenderableType]:
    v = gate_verdict(reports)
    title = Text("skycheck ")
    title.append(v.value.upper(), style=_VERDICT_STYLE[v])
    title.append(f"  {len(reports)} reports")
    out: list[RenderableType] = [title]
    labels = [
        clean(r.context or ("(offline)" if r.mode == "offline" else "(current context)"))
        for r in reports
    ]
    pad = max(len(label) for label in labels)
    for label, r in zip(labels, reports, strict=True):
        c = count(r.findings)
        line = Text("  ")
        line.append(f"{r.verdict.value.upper():<7}", style=_VERDICT_STYLE[r.verdict])
        line.append(
            f"  {label:<{pad}}  {clean(subject_label(r.subject))}, namespace {clean(r.namespace)}"
        )
        line.append(f": {_counts_text(c.denied, c.unknown, c.total)}")
        out.append(line)
    return out


def _console(options: RenderOptions, buffer: StringIO) -> Console:
    return Console(
        file=buffer,
        width=options.width,
        color_system="standard" if options.color else None,
        force_terminal=options.color,
        force_interactive=False,
        highlight=False,
        markup=False,
        emoji=False,
        soft_wrap=False,
        legacy_windows=False,
        _environ={},  # COLUMNS, NO_COLOR, FORCE_COLOR: the CLI decides, not the environment
    )


_SUMMARY_COLUMNS = ("VERDICT", "IDENTITY", "NAMESPACE", "MISSING", "UNKNOWN")


def _summary(reports: Sequence[Report]) -> list[Text]:
    """An audit across a cluster: one line per identity (verdict, missing and undecided
    checks that gate, excess by risk class; ``?`` where the excess could not be read)."""
    from skycheck.excess_types import RISK_ORDER
    from skycheck.subjects import summarize

    summary = summarize(reports)
    v = summary.verdict
    title = Text("skycheck ")
    title.append(v.value.upper(), style=_VERDICT_STYLE[v])
    counts = summary.verdicts()
    n = len(summary.rows)
    title.append(
        f"  {n} identit{'y' if n == 1 else 'ies'} audited: {counts['pass']} pass, "
        f"{counts['fail']} fail, {counts['unknown']} unknown"
    )
    if not summary.rows:
        return [title, Text("  no identity was selected: nothing to audit")]
    header = (*_SUMMARY_COLUMNS, *(r.value.upper() for r in RISK_ORDER))
    rows = [
        (
            r.verdict.value.upper(),
            clean(subject_label(r.report.subject)),
            clean(r.report.namespace),
            str(r.missing),
            str(r.unknown),
            *(str(r.excess[risk.value]) if r.excess else "?" for risk in RISK_ORDER),
        )
        for r in summary.rows
    ]
    widths = [max(len(cells[i]) for cells in (header, *rows)) for i in range(len(header))]
    numeric = range(3, len(header))

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.rjust(w) if i in numeric else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    out = [title, Text(""), Text(line(header), style="bold")]
    for cells, r in zip(rows, summary.rows, strict=True):
        text = Text(cells[0].ljust(widths[0]), style=_VERDICT_STYLE[r.verdict])
        text.append("  " + line(cells)[widths[0] + 2 :])
        out.append(text)
    return out


def render_table(reports: Reports, options: RenderOptions | None = None) -> str:
    options = options or RenderOptions()
    buffer = StringIO()
    console = _console(options, buffer)
    if options.summary:  # an audit across a cluster: the summary; -o json for the details
        listed = [reports] if isinstance(reports, Report) else list(reports)
        for text in _summary(listed):
            console.print(text, overflow="ignore", crop=False)
        return finish("\n".join(line.rstrip() for line in buffer.getvalue().splitlines()))
    items, multi = normalize(reports)
    if multi:
        for renderable in _overview(items):
            console.print(renderable)
    for r in items:
        if multi:
            console.print(Text(""))
            console.print(Text("-" * min(options.width, 80), style="dim"))
        for renderable in _details(r, options, multi):
            console.print(renderable)
    lines = [line.rstrip() for line in buffer.getvalue().splitlines()]
    return finish("\n".join(lines))
