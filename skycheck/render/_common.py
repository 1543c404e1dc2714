"""Shared helpers for the renderers: ordering, grouping, labels and the gate rule.

Every renderer orders and classifies findings through this module so the
formats agree with each other and with the exit code:

- Order: features in the report's order (catalogue order), then rule id,
  then verb in Kubernetes' usual order (get, list, watch, create, update,
  patch, delete, deletecollection, then the rest alphabetically), then
  namespace and check id. It depends only on the data, never on the order a
  reviewer happened to return findings in.
- Gating: a finding *gates* when it decides the report's verdict under the
  report's ``fail_on``, exactly as ``Report.verdict_for`` folds them: under
  ``required`` only required features gate; under ``optional`` everything
  does; under ``never`` denials do not gate but undecided checks still do.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeAlias

from skycheck.models import (
    Basis,
    Decision,
    FailOn,
    Finding,
    Location,
    Report,
    Requirement,
    Subject,
)

# Kubernetes' own listing order for the common verbs; anything else sorts after, by name.
VERB_ORDER = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")


def verb_rank(verb: str) -> tuple[int, str]:
    return (VERB_ORDER.index(verb), "") if verb in VERB_ORDER else (len(VERB_ORDER), verb)


Reports: TypeAlias = "Report | Sequence[Report]"


def normalize(reports: Reports, allow_empty: bool = False) -> tuple[tuple[Report, ...], bool]:
    """Return (reports, multi). A lone Report is single form; any sequence is multi form.

    The shape follows the caller's type, not the count, so a script that asks
    for several contexts gets the multi form even when only one was found. An empty
    list is an error, but for an audit across a cluster (``allow_empty``) that selected
    no identity.
    """
    if isinstance(reports, Report):
        return (reports,), False
    out = tuple(reports)
    if not out and not allow_empty:
        raise ValueError("nothing to render: the list of reports is empty")
    for r in out:
        if not isinstance(r, Report):
            raise TypeError(f"expected Report, got {type(r).__name__}")
    return out, True


def feature_rank(report: Report, feature: str) -> tuple[int, str]:
    if feature in report.features:
        return (report.features.index(feature), "")
    return (len(report.features), feature)


def finding_key(report: Report, f: Finding) -> tuple[object, ...]:
    r = f.requirement
    return (feature_rank(report, r.feature), r.rule_id, verb_rank(r.verb), r.namespace, r.id)


def sorted_findings(report: Report) -> tuple[Finding, ...]:
    return tuple(sorted(report.findings, key=lambda f: finding_key(report, f)))


def gates(report: Report, finding: Finding) -> bool:
    """Whether this finding, if not allowed, decides the verdict (see module docstring)."""
    if finding.decision is Decision.ALLOWED or not report.gates:
        return False
    if not report.profile.gates(finding.requirement.effect):
        return False  # degrades/documented: shown, gating only under --profile docs
    if report.fail_on is FailOn.NEVER:
        return finding.decision is Decision.UNKNOWN
    if report.fail_on is FailOn.OPTIONAL:
        return True
    return finding.requirement.required


# C0 controls but tab and newline, DEL and C1: terminal escapes, and invalid in XML 1.0.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def clean(text: str) -> str:
    """Make text from the cluster safe to print: no escape sequences, no carriage returns.

    Reasons and evaluation errors come from the API server (or an authorizer
    webhook) and context names from a kubeconfig; none of them may move a
    terminal's cursor or break an XML document.
    """
    return _CONTROL.sub("\ufffd", text.replace("\r\n", "\n"))


def resource_text(req: Requirement) -> str:
    """A requirement without its verb, as ``Requirement.describe`` spells the rest."""
    described = req.describe()
    return described[len(req.verb) + 1 :]


def subject_label(subject: Subject) -> str:
    if subject.kind == "ServiceAccount" and subject.namespace:
        return f"ServiceAccount {subject.namespace}/{subject.name}"
    return f"{subject.kind} {subject.username or subject.name}"


def report_labels(reports: Sequence[Report]) -> tuple[str, ...]:
    """Short, unique names for reports in a multi-report document."""
    base = [
        r.context or ("(offline)" if r.mode == "offline" else "(current context)") for r in reports
    ]
    if len(set(base)) != len(base):
        base = [f"{b} {r.subject.username}" for b, r in zip(base, reports, strict=True)]
    if len(set(base)) != len(base):
        base = [f"{b} #{i + 1}" for i, b in enumerate(base)]
    return tuple(base)


@dataclass(frozen=True, slots=True)
class Counts:
    allowed: int
    denied: int
    unknown: int

    @property
    def total(self) -> int:
        return self.allowed + self.denied + self.unknown


def count(findings: Sequence[Finding]) -> Counts:
    return Counts(
        allowed=sum(f.decision is Decision.ALLOWED for f in findings),
        denied=sum(f.decision is Decision.DENIED for f in findings),
        unknown=sum(f.decision is Decision.UNKNOWN for f in findings),
    )


_GENERIC = ("no RBAC rule grants", "no role bound to")


@dataclass(frozen=True, slots=True)
class RuleGroup:
    """The findings of one catalogue rule in one namespace: one row in human formats."""

    first: Requirement
    findings: tuple[Finding, ...]

    @property
    def rule_id(self) -> str:
        return self.first.rule_id

    def verbs(self, decision: Decision) -> tuple[str, ...]:
        return tuple(f.requirement.verb for f in self.findings if f.decision is decision)

    @property
    def worst(self) -> Decision:
        decisions = {f.decision for f in self.findings}
        for d in (Decision.DENIED, Decision.UNKNOWN):
            if d in decisions:
                return d
        return Decision.ALLOWED

    @property
    def hints(self) -> tuple[str, ...]:
        """Distinct informative denial reasons (nearest misses), at most three.

        Generic "nothing grants it" reasons say nothing the row does not; they are left out.
        """
        out: dict[str, None] = {}
        for f in self.findings:
            reason = f.reason.strip()
            if f.decision is Decision.DENIED and reason and not reason.startswith(_GENERIC):
                out.setdefault(reason, None)
        return tuple(out)[:3]

    @property
    def errors(self) -> tuple[str, ...]:
        """Distinct explanations for the undecided checks, in check order."""
        out: dict[str, None] = {}
        for f in self.findings:
            if f.decision is Decision.UNKNOWN:
                out[f.evaluation_error or f.reason or "no reason given"] = None
        return tuple(out)


def group_by_rule(findings: Sequence[Finding]) -> tuple[RuleGroup, ...]:
    """Group findings (already sorted) by (rule, namespace, name), keeping their order."""
    groups: dict[tuple[str, str, str], list[Finding]] = {}
    for f in findings:
        r = f.requirement
        groups.setdefault((r.rule_id, r.namespace, r.name), []).append(f)
    return tuple(RuleGroup(fs[0].requirement, tuple(fs)) for fs in groups.values())


_PROBLEM_RANK = {Decision.DENIED: 0, Decision.UNKNOWN: 1, Decision.ALLOWED: 2}


def problems_first(groups: Sequence[RuleGroup]) -> tuple[RuleGroup, ...]:
    """Denied rules, then undecided, then granted; stable within each."""
    return tuple(sorted(groups, key=lambda g: _PROBLEM_RANK[g.worst]))


def fix_command(
    fix_path: str | None, context: str | None = None, namespaces: Sequence[str] = ()
) -> str:
    """The command that applies the generated manifest.

    ``kubectl auth reconcile`` adds rules to a Role that an earlier fix made;
    ``kubectl apply`` would replace them (fix objects are named after the
    subject). reconcile skips Namespace objects, so those are created first.
    With several contexts each context's fix has a file of its own.
    """
    from skycheck.fixit import fix_path_for

    path = fix_path_for(fix_path, context) if fix_path else "PATH"
    ctx = f" --context {context}" if context else ""
    create = "".join(f"kubectl{ctx} create namespace {ns} && " for ns in namespaces)
    return f"{create}kubectl{ctx} auth reconcile -f {path}"


def fix_hint(
    fix_path: str | None, context: str | None = None, namespaces: Sequence[str] = ()
) -> str:
    if fix_path:
        return f"To fix: {fix_command(fix_path, context, namespaces)}"
    return (
        "To fix: rerun with --fix PATH to write the RBAC manifest, then "
        f"{fix_command(None, context, namespaces)}"
    )


@dataclass(frozen=True, slots=True)
class RenderOptions:
    """Presentation knobs; formats that have no use for one ignore it."""

    color: bool = False
    width: int = 100
    fix_path: str | None = None  # where the CLI wrote the fix manifest (--fix PATH)
    fix_per_context: bool = False  # several contexts: one fix file (and --context) each
    summary: bool = False  # an audit across a cluster: the per-identity summary too


def finish(text: str) -> str:
    """Exactly one trailing newline, so the CLI can write output as is."""
    return text.rstrip("\n") + "\n"


# --- locations (skycheck.locate) ---------------------------------------------------------

_BASIS_TEXT = {
    Basis.GRANT: "the rule that grants it",
    Basis.RULE: "a rule on the same resource",
    Basis.NEAR_MISS_BINDING: "a binding of the subject elsewhere, or of a look-alike subject",
    Basis.GROUP_RULE: "a rule of the same API group",
    Basis.ROLE: "a role bound to the subject",
    Basis.BINDING: "a binding of the subject",
    Basis.SERVICE_ACCOUNT: "the checked ServiceAccount",
    Basis.FIRST_DOCUMENT: "the input's first document",
}


def object_text(obj: tuple[str, str, str] | None) -> str:
    """``Role default/sky-role``, ``ClusterRole sky-nodes``; "" when not known."""
    if obj is None:
        return ""
    kind, namespace, name = obj
    return f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"


def location_text(loc: Location) -> str:
    """Where a finding is, in words: ``deploy/rbac.yaml line 12 (Role default/sky-role: a
    rule on the same resource)``; for a live check its identity and context."""
    if loc.input == "cluster":
        return f"identity {loc.identity}, context {loc.context or '(current context)'}"
    if loc.input == "none":
        return "no manifest document"
    where = (
        f"{loc.path} line {loc.line}" if loc.input == "file" else f"standard input line {loc.line}"
    )
    what = ": ".join(p for p in (object_text(loc.object), _BASIS_TEXT.get(loc.basis, "")) if p)
    return f"{where} ({what})" if what else where


def file_location(loc: Location) -> tuple[str, int] | None:
    """(path, line) when the location is in a named file, else None (live, stdin, none)."""
    if loc.input == "file" and loc.path and loc.line:
        return loc.path, loc.line
    return None
