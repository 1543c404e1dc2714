"""JUnit XML (``-o junit``) for CI test reporters.

Shape: ``<testsuites name="skycheck">`` holding one ``<testsuite>`` per
feature (per report and feature when several reports are given), one
``<testcase>`` per check. ``classname`` is the feature (``<label>/<feature>``
with several reports, the label being the context); ``name`` is the check id
and its kubectl-style description, e.g. ``core.pods-exec.create: create
pods/exec -n default``. Suite ``<properties>`` carry context, namespace,
subject, method, mode, fail-on, whether the feature is required, the
report's verdict, and one ``warning`` property per report warning. Offline, a
testcase has ``file`` and ``line`` attributes (as pytest's and GitLab's reporters
read them): where the check is in the user's manifests (``skycheck.locate``).

How each decision maps, and why:

- allowed: a passing testcase.
- denied, and it gates (it decides the verdict under ``--fail-on``; by
  default: a required feature): ``<failure type="denied">`` with why SkyPilot
  needs it, what breaks and the catalogue source in the body.
- denied, but it does not gate (an optional feature under the default
  ``--fail-on required``, or anything under ``--fail-on never``):
  ``<skipped message="not gating (optional feature): missing ...">``. Reporters such as
  Jenkins mark a build unstable and GitLab shows a red test for any
  ``<failure>``; the default run checks every feature but requires only
  ``core``, so failures there would contradict exit code 0 on nearly every
  cluster. The skip message still names what is missing. With
  ``--fail-on optional`` these become failures, matching the exit code.
- with ``--excess``: a suite ``excess``, one testcase per excess row, skipped (a warning)
  unless ``--fail-on-excess`` makes it gate (a failure); see ``_excess_suite``.
- unknown: always ``<error type="unknown">``, never skipped: a check that
  could not be made is never counted as granted (fail closed), whether or not
  it gates. The message says when the check's feature is optional.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence

from skycheck.models import Decision, Finding, Report
from skycheck.render._common import (
    RenderOptions,
    Reports,
    clean,
    file_location,
    finish,
    gates,
    normalize,
    report_labels,
    sorted_findings,
    subject_label,
)


def _body(f: Finding) -> str:
    r = f.requirement
    lines = [f"why: {r.why}", f"breaks: {r.breaks}", f"source: {r.source}", f"rule: {r.rule_id}"]
    if f.evaluation_error:
        lines.append(f"error: {f.evaluation_error}")
    if f.reason:
        lines.append(f"reason: {f.reason}")
    return "\n".join(lines)


def _testcase(suite: ET.Element, report: Report, f: Finding, classname: str) -> str | None:
    """Add one testcase; return its outcome ("failure", "error", "skipped") or None."""
    r = f.requirement
    attrs = {"classname": classname, "name": f"{r.id}: {r.describe()}", "time": "0"}
    at = file_location(report.location_of(f))
    if at is not None:
        attrs["file"], attrs["line"] = at[0], str(at[1])
    case = ET.SubElement(suite, "testcase", attrs)
    optional = "" if r.required else " (optional feature)"
    if f.decision is Decision.DENIED:
        if gates(report, f):
            el = ET.SubElement(
                case,
                "failure",
                {"message": f"missing permission{optional}: {r.describe()}", "type": "denied"},
            )
            el.text = _body(f)
            return "failure"
        ET.SubElement(
            case, "skipped", {"message": f"not gating{optional}: missing {r.describe()}"}
        ).text = _body(f)
        return "skipped"
    if f.decision is Decision.UNKNOWN:
        el = ET.SubElement(
            case,
            "error",
            {"message": f"could not check{optional}: {r.describe()}", "type": "unknown"},
        )
        el.text = _body(f)
        return "error"
    return None


def _properties(suite: ET.Element, report: Report, required: bool, not_applicable: str) -> None:
    props = ET.SubElement(suite, "properties")
    values = [
        ("context", report.context or ""),
        ("namespace", report.namespace),
        ("subject", subject_label(report.subject)),
        ("username", report.subject.username),
        ("method", report.method.value),
        ("mode", report.mode),
        ("failOn", report.fail_on.value),
        ("required", "true" if required else "false"),
        ("verdict", report.verdict.value),
        ("profile", report.profile.value),
    ]
    if report.skypilot:
        values.append(("skypilotVersion", report.skypilot.named))
        values.append(("skypilotProvenBy", report.skypilot.version))
        values.append(("skypilotProven", "true" if report.skypilot.proven else "false"))
    if not_applicable:
        values.append(("notApplicable", not_applicable))
    values += [("warning", w) for w in report.warnings]
    for name, value in values:
        ET.SubElement(props, "property", {"name": name, "value": value})


def _set_counts(el: ET.Element, tests: int, outcomes: Sequence[str | None]) -> None:
    el.set("tests", str(tests))
    el.set("failures", str(outcomes.count("failure")))
    el.set("errors", str(outcomes.count("error")))
    el.set("skipped", str(outcomes.count("skipped")))
    el.set("time", "0")


def _excess_suite(root: ET.Element, report: Report, label: str | None) -> list[str | None]:
    """With --excess: a suite ``excess``, one testcase per excess row (classname
    ``skycheck.excess.<class>``): failed at or above --fail-on-excess, skipped below it
    (a warning), an error when what the identity holds could not be read."""
    if report.excess is None:
        return []
    from skycheck.excess_types import ExcessState
    from skycheck.render._excess import RULE_IDS, excess_rows, row_gates, summary_line

    name = f"{label}/excess" if label else "excess"
    suite = ET.SubElement(root, "testsuite", {"name": name})
    props = ET.SubElement(suite, "properties")
    ET.SubElement(props, "property", {"name": "summary", "value": summary_line(report)})
    for note in report.excess.notes:
        ET.SubElement(props, "property", {"name": "note", "value": note})
    outcomes: list[str | None] = []
    if report.excess.state is ExcessState.UNKNOWN:
        case = ET.SubElement(
            suite, "testcase", {"classname": name, "name": "excess: unknown", "time": "0"}
        )
        el = ET.SubElement(
            case,
            "error",
            {"message": "what the identity holds could not be read", "type": "unknown"},
        )
        el.text = "\n".join(report.excess.notes)
        outcomes.append("error")
    for row in excess_rows(report):
        case = ET.SubElement(
            suite,
            "testcase",
            {
                "classname": RULE_IDS[row.risk],
                "name": f"excess {row.risk.value}: {row.text}",
                "time": "0",
            },
        )
        body = [f"risk: {row.risk.value} ({row.risk_id})", f"granted by: {row.granted_by}"]
        if row.reason:
            body.append(f"why risky: {row.reason}")
        if row.needed:
            body.append(f"note: {row.needed}")
        message = f"held beyond SkyPilot's need ({row.risk.value}): {row.text}"
        if row_gates(report, row):
            el = ET.SubElement(case, "failure", {"message": message, "type": "excess"})
            outcomes.append("failure")
        else:
            el = ET.SubElement(case, "skipped", {"message": f"not gating: {message}"})
            outcomes.append("skipped")
        el.text = "\n".join(body)
    _set_counts(suite, len(outcomes), outcomes)
    return outcomes


def render_junit(reports: Reports, options: RenderOptions | None = None) -> str:
    items, multi = normalize(reports, bool(options and options.summary))
    root = ET.Element("testsuites", {"name": "skycheck"})
    all_outcomes: list[str | None] = []
    for label, report in zip(report_labels(items), items, strict=True):
        findings = sorted_findings(report)
        for fs in report.feature_statuses():
            name = f"{label}/{fs.name}" if multi else fs.name
            suite = ET.SubElement(root, "testsuite", {"name": name})
            _properties(suite, report, fs.required, fs.reason if fs.status is None else "")
            cases = [f for f in findings if f.requirement.feature == fs.name]
            outcomes = [_testcase(suite, report, f, name) for f in cases]
            # Attribute order: name first, then the counts, as reporters print them.
            _set_counts(suite, len(cases), outcomes)
            all_outcomes += outcomes
        all_outcomes += _excess_suite(root, report, label if multi else None)
    _set_counts(root, len(all_outcomes), all_outcomes)
    for el in root.iter():  # text from the cluster: no characters XML 1.0 forbids
        for key, value in el.attrib.items():
            el.set(key, clean(value))
        if el.text:
            el.text = clean(el.text)
    ET.indent(root, space="  ")
    body = ET.tostring(root, encoding="unicode", short_empty_elements=True)
    return finish('<?xml version="1.0" encoding="UTF-8"?>\n' + body)
