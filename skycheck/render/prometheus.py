"""Prometheus metrics (``-o prometheus``, and ``skycheck watch``'s ``/metrics``).

The text exposition format, written by ``prometheus_client`` (imported only here, only on
this path). For a CronJob feeding node_exporter's textfile collector or a Pushgateway, and
for the watcher, which serves the same families. Labels ``context`` ("" offline),
``identity`` (the username checked) and ``namespace`` (the SkyPilot namespace) name a
report; one run may hold several.

- ``skycheck_verdict{context,identity,namespace,verdict}``: 1 for the report's verdict
  (pass, fail, unknown), 0 for the other two, so ``skycheck_verdict{verdict!="pass"} == 1``
  alerts on both a gap and a check that could not be made.
- ``skycheck_run_verdict{verdict}``: the run's gate (the exit code's verdict); unknown when
  the check could not run at all (watch mode: the error is on stderr).
- ``skycheck_missing_checks{context,identity,namespace,feature,required}``: denied checks
  whose effect gates under the report's profile; ``skycheck_unknown_checks``: undecided ones;
  ``skycheck_checks``: every check of the feature.
- ``skycheck_skypilot_version_info{version,proven_by,proven,source}``: the SkyPilot version
  checked (as given or installed), the proven release that decided it, and whether it is
  proven (false: newer than every proven release, checked against ``proven_by``).
- ``skycheck_last_run_timestamp_seconds``: when the reports were made.
- ``skycheck_excess_permissions{context,identity,namespace,risk}``: only when a report
  carries the least-privilege audit (``excess``); see ``_excess_by_risk``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from skycheck.models import Decision, Report, Verdict, gate_verdict
from skycheck.render._common import RenderOptions, Reports

if TYPE_CHECKING:
    from prometheus_client.core import Metric

REPORT_LABELS = ("context", "identity", "namespace")
VERDICTS = tuple(v.value for v in Verdict)
RISKS = ("critical", "high", "medium", "low")


def _now() -> float:
    return time.time()


def _label(value: str) -> str:
    # Names come from kubeconfigs and manifests: escape control and bidi characters, as
    # every other format does (the exposition format escapes only \\, " and newlines).
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in value)


def _report_labels(report: Report) -> list[str]:
    return [_label(report.context or ""), _label(report.subject.username or ""), report.namespace]


def _excess_by_risk(report: Report) -> dict[str, int] | None:
    """Excess grants by risk, or None when the report has no least-privilege audit.

    With ``--excess`` (docs/excess.md) a report gets one gauge per risk level; without the
    audit, or when what the identity holds could not be read (unknown), nothing is emitted,
    so "not audited" never reads as "no excess".
    """
    from skycheck.excess_types import ExcessState

    excess = report.excess
    if excess is None or excess.state is ExcessState.UNKNOWN:
        return None
    counts = excess.counts()
    return {risk: counts.get(risk, 0) for risk in RISKS}


def metric_families(
    reports: Sequence[Report], timestamp: float, *, run_verdict: Verdict | None = None
) -> list[Metric]:
    """The metric families of one run's reports (``run_verdict`` overrides the gate, for a
    run that produced no report)."""
    from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily

    verdict = GaugeMetricFamily(
        "skycheck_verdict",
        "1 for the report's verdict (pass, fail, unknown), 0 for the others.",
        labels=[*REPORT_LABELS, "verdict"],
    )
    checks = GaugeMetricFamily(
        "skycheck_checks", "Checks of the feature.", labels=[*REPORT_LABELS, "feature", "required"]
    )
    missing = GaugeMetricFamily(
        "skycheck_missing_checks",
        "Denied checks of the feature whose effect gates under the report's profile.",
        labels=[*REPORT_LABELS, "feature", "required"],
    )
    unknown = GaugeMetricFamily(
        "skycheck_unknown_checks",
        "Checks of the feature that could not be decided.",
        labels=[*REPORT_LABELS, "feature", "required"],
    )
    excess = GaugeMetricFamily(
        "skycheck_excess_permissions",
        "Grants beyond what the checked features need, by risk.",
        labels=[*REPORT_LABELS, "risk"],
    )
    versions = InfoMetricFamily(
        "skycheck_skypilot_version", "The SkyPilot version checked against.", labels=["source"]
    )
    seen_versions: set[tuple[str, str, str, str]] = set()
    for report in reports:
        labels = _report_labels(report)
        for value in VERDICTS:
            verdict.add_metric([*labels, value], 1.0 if report.verdict.value == value else 0.0)
        for name in report.features:
            required = "true" if name in report.required_features else "false"
            findings = [f for f in report.findings if f.requirement.feature == name]
            gating = [f for f in findings if report.profile.gates(f.requirement.effect)]
            feature = [*labels, _label(name), required]
            checks.add_metric(feature, float(len(findings)))
            denied = sum(f.decision is Decision.DENIED for f in gating)
            missing.add_metric(feature, float(denied))
            undecided = sum(f.decision is Decision.UNKNOWN for f in findings)
            unknown.add_metric(feature, float(undecided))
        by_risk = _excess_by_risk(report)
        for risk, count in (by_risk or {}).items():
            excess.add_metric([*labels, risk], float(count))
        if report.skypilot is not None:
            v = report.skypilot
            seen_versions.add((v.named, v.version, "true" if v.proven else "false", v.source))
    for version, proven_by, proven, source in sorted(seen_versions):
        versions.add_metric(
            [source], {"version": version, "proven_by": proven_by, "proven": proven}
        )
    gate = run_verdict or (gate_verdict(list(reports)) if reports else Verdict.UNKNOWN)
    run = GaugeMetricFamily(
        "skycheck_run_verdict",
        "1 for the run's gate verdict (the exit code's), 0 for the others.",
        labels=["verdict"],
    )
    for value in VERDICTS:
        run.add_metric([value], 1.0 if gate.value == value else 0.0)
    last = GaugeMetricFamily(
        "skycheck_last_run_timestamp_seconds", "When the check ran (Unix time)."
    )
    last.add_metric([], timestamp)
    families: list[Any] = [run, verdict, checks, missing, unknown, versions, last]
    if excess.samples:
        families.append(excess)
    return families


class _Families:
    """A collector over fixed families (prometheus_client's ``Collector`` protocol)."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = list(families)

    def collect(self) -> Iterable[Metric]:
        return iter(self._families)


def exposition(families: Iterable[Metric]) -> str:
    """The text exposition format of ``families``."""
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(families))
    return generate_latest(registry).decode("utf-8")


def render_prometheus(reports: Reports, options: RenderOptions) -> str:
    listed = [reports] if isinstance(reports, Report) else list(reports)
    # An audit across a cluster that selected no identity passes, as its exit code says.
    run_verdict = Verdict.PASS if options.summary and not listed else None
    return exposition(metric_families(listed, _now(), run_verdict=run_verdict))
