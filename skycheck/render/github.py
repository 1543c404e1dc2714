"""GitHub Actions workflow commands (``-o github``): annotations on the run.

One ``::error`` or ``::warning`` per catalogue rule and namespace with a
problem, its verbs collapsed ("cannot create, get pods/exec -n default"),
then one ``::notice`` summary per report. ``error`` when the checks gate the
verdict (by default: a required feature), ``warning`` otherwise; denied and
undecided verbs of one rule are separate annotations. Gating ones come first,
after one ``::warning`` per SkyPilot version that is not proven (newer than
every proven release, checked against the newest one's needs).

Why per rule and not per check: GitHub shows at most 10 error and 10 warning
annotations per step (50 per job) and drops the rest, and a user missing
everything has ~98 denied checks but ~30 rules. Every denied check is still
named: the verbs are listed in its rule's annotation.

Offline, each annotation carries ``file`` and ``line``: where its first check is in the
user's manifests (``skycheck.locate``), so GitHub shows it on that line of the diff. Live
checks (and standard input, which has no path) have no file; their message names the
identity and context.

With ``--excess``, one annotation per excess row (``_excess_annotations``):
``error`` at or above ``--fail-on-excess``, ``warning`` otherwise.

Escaping follows @actions/core (toolkit ``command.ts``): in the message
``%``, ``\\r`` and ``\\n`` become ``%25``, ``%0D`` and ``%0A``; in property
values ``:`` and ``,`` also become ``%3A`` and ``%2C``.
"""

from __future__ import annotations

from skycheck.fixit import fix_namespaces
from skycheck.models import Decision, Report
from skycheck.render._common import (
    RenderOptions,
    Reports,
    RuleGroup,
    clean,
    count,
    file_location,
    finish,
    fix_hint,
    gates,
    group_by_rule,
    location_text,
    normalize,
    report_labels,
    resource_text,
    sorted_findings,
    subject_label,
)


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def command(name: str, message: str, **properties: str) -> str:
    """One workflow command line, e.g. ``::error title=T::message``."""
    props = ",".join(f"{k}={escape_property(clean(v))}" for k, v in properties.items())
    return f"::{name}{' ' + props if props else ''}::{escape_data(clean(message))}"


def _annotations(report: Report, label: str | None) -> list[tuple[bool, str]]:
    """(gating, command) pairs for one report."""
    prefix = f"[{label}] " if label else ""
    who = subject_label(report.subject)
    out: list[tuple[bool, str]] = []
    group: RuleGroup
    for group in group_by_rule(sorted_findings(report)):
        req = group.first
        scope = f"Feature {req.feature} ({'required' if req.required else 'optional'})"
        res = resource_text(req)
        for decision in (Decision.DENIED, Decision.UNKNOWN):
            members = [f for f in group.findings if f.decision is decision]
            if not members:
                continue
            gating = any(gates(report, f) for f in members)
            verbs = ", ".join(f.requirement.verb for f in members)
            if decision is Decision.DENIED:
                title = f"{prefix}skycheck: cannot {verbs} {res}"
                message = (
                    f"{who} cannot {verbs} {res}. Why: {req.why} Breaks: {req.breaks} "
                    f"{scope}, rule {req.rule_id}."
                )
            else:
                title = f"{prefix}skycheck: could not check {verbs} {res}"
                message = (
                    f"Could not check whether {who} can {verbs} {res}: "
                    f"{'; '.join(group.errors)}. Why it matters: {req.why} "
                    f"{scope}, rule {req.rule_id}."
                )
            loc = report.location_of(members[0])
            at = file_location(loc)
            props = {"title": title}
            if at is not None:
                props = {"file": at[0], "line": str(at[1]), "title": title}
            elif loc.input == "cluster":
                message += f" Checked as {location_text(loc)}."
            elif loc.input == "stdin":
                message += f" At {location_text(loc)}."
            out.append((gating, command("error" if gating else "warning", message, **props)))
    return out


def _notice(report: Report, label: str | None, options: RenderOptions, multi: bool) -> str:
    c = count(report.findings)
    title = f"{'[' + label + '] ' if label else ''}skycheck {report.verdict.value.upper()}"
    where = f"namespace {report.namespace}" if report.namespace else "cluster scope"
    ctx = f", context {report.context}" if report.context else ""
    required = sum(
        f.decision is Decision.DENIED and f.requirement.required for f in report.findings
    )
    if c.denied or c.unknown:
        counts = (
            f"{c.denied} of {c.total} checks denied ({required} in required features), "
            f"{c.unknown} could not be checked."
        )
    else:
        counts = f"all {c.total} checks granted."
    text = f"{subject_label(report.subject)} in {where}{ctx}: {counts}"
    if report.fix:
        text += (
            " "
            + fix_hint(
                options.fix_path,
                report.context if options.fix_per_context else None,
                fix_namespaces(report),
            )
            + "."
        )
    if report.excess is not None:
        from skycheck.render._excess import summary_line

        text += f" {summary_line(report)}."
    return command("notice", text, title=title)


def _not_proven(items: list[Report]) -> list[str]:
    """One warning per SkyPilot version checked against another's needs."""
    versions = sorted(
        {r.skypilot for r in items if r.skypilot and not r.skypilot.proven},
        key=lambda v: (v.named, v.source),
    )
    return [
        command(
            "warning",
            f"{v.describe()}: newer than every proven SkyPilot version, checked against "
            f"{v.version}'s needs, which it may not match.",
            title=f"skycheck: SkyPilot {v.named} is NOT PROVEN",
        )
        for v in versions
    ]


def _excess_annotations(report: Report, label: str | None) -> list[tuple[bool, str]]:
    """With --excess: one annotation per excess row, ``error`` at or above
    --fail-on-excess, ``warning`` below it; a ``warning`` when excess is unknown."""
    if report.excess is None:
        return []
    from skycheck.excess_types import ExcessState
    from skycheck.render._excess import excess_rows, row_gates

    prefix = f"[{label}] " if label else ""
    out: list[tuple[bool, str]] = []
    if report.excess.state is ExcessState.UNKNOWN:
        gating = report.fail_on_excess is not None and report.gates
        text = "; ".join(report.excess.notes) or "what the identity holds could not be read"
        title = f"{prefix}skycheck: excess unknown"
        out.append((gating, command("error" if gating else "warning", text, title=title)))
    for row in excess_rows(report):
        gating = row_gates(report, row)
        title = f"{prefix}skycheck: excess {row.risk.value}: {row.target}"
        message = f"{', '.join(row.verbs)} held beyond SkyPilot's need ({row.granted_by})"
        if row.needed:
            message += f"; {row.needed}"
        out.append((gating, command("error" if gating else "warning", message, title=title)))
    return out


def render_github(reports: Reports, options: RenderOptions | None = None) -> str:
    options = options or RenderOptions()
    items, multi = normalize(reports, bool(options and options.summary))
    labels = report_labels(items)
    lines: list[str] = _not_proven(list(items))
    annotations = [
        a
        for label, r in zip(labels, items, strict=True)
        for a in (
            *_annotations(r, label if multi else None),
            *_excess_annotations(r, label if multi else None),
        )
    ]
    # Gating annotations first: GitHub keeps only the first few of each level.
    lines += [cmd for gating, cmd in annotations if gating]
    lines += [cmd for gating, cmd in annotations if not gating]
    lines += [
        _notice(r, label if multi else None, options, multi)
        for label, r in zip(labels, items, strict=True)
    ]
    return finish("\n".join(lines))
