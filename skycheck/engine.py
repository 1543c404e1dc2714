"""Runs one check: requirements + subject + reviewer -> a frozen Report.

The engine is the same for live and offline mode; only the reviewer differs.
It also turns a missing hard-coded namespace (skypilot-system, ingress-nginx)
into a failed check of the feature that needs it, unless the identity may
create namespaces: SkyPilot cannot run its DaemonSet in a namespace that does
not exist, whatever Roles say.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from skycheck.catalogue import Catalogue, bind
from skycheck.models import (
    Decision,
    FailOn,
    Finding,
    Profile,
    Report,
    Requirement,
    Scope,
    SkyPilotVersion,
    Subject,
)
from skycheck.review import Reviewer, ReviewResult


@dataclass(frozen=True, slots=True)
class CheckPlan:
    """What to check, independent of how."""

    namespace: str
    features: tuple[str, ...]
    required_features: tuple[str, ...]
    fail_on: FailOn = FailOn.REQUIRED
    context: str | None = None
    skypilot: SkyPilotVersion | None = None  # None: the newest proven version
    profile: Profile = Profile.SKYPILOT
    not_applicable: tuple[tuple[str, str], ...] = ()  # (feature, reason)


def namespace_requirement(feature: str, namespace: str, required: bool) -> Requirement:
    """The check standing for "namespace X exists, or the identity may create it"."""
    return Requirement(
        id=f"{feature}.namespace-{namespace}.create",
        rule_id=f"{feature}.namespace-{namespace}",
        feature=feature,
        required=required,
        verb="create",
        group="",
        resource="namespaces",
        subresource="",
        namespace="",
        name="",
        why=f"SkyPilot hard-codes namespace {namespace} for this feature; it must exist "
        "(or the identity must be able to create it).",
        breaks=f"Everything this feature does in {namespace} fails: the namespace is missing.",
        source="docs, namespace precondition",
    )


def _missing_namespace_findings(
    catalogue: Catalogue,
    plan: CheckPlan,
    result: ReviewResult,
    reviewer: Reviewer,
    subject: Subject,
) -> tuple[list[Finding], list[str]]:
    exists = dict(result.namespaces)
    warnings: list[str] = []
    extra: list[Requirement] = []
    for feature in catalogue.features:
        if feature.name not in plan.features or feature.name in dict(plan.not_applicable):
            continue
        for ns in sorted({r.namespace for r in feature.rules if r.scope is Scope.FIXED}):
            # Live, a namespace we could not look up is a precondition we could not
            # check: fail closed. Offline, namespaces are outside the manifests' say.
            unknown_live = exists.get(ns, False) is None and reviewer.mode == "live"
            if exists.get(ns) is False or unknown_live:
                extra.append(
                    namespace_requirement(feature.name, ns, feature.name in plan.required_features)
                )
    if plan.namespace and exists.get(plan.namespace) is False:
        warnings.append(
            f"namespace {plan.namespace} does not exist: SkyPilot never creates its "
            "workload namespace, so create it before launching"
        )
    if not extra:
        return [], warnings
    review = reviewer.review(subject, extra)
    findings = []
    for f in review.findings:
        ns = f.requirement.rule_id.rsplit("namespace-", 1)[1]
        if f.decision is Decision.ALLOWED:
            findings.append(
                Finding(
                    f.requirement,
                    Decision.ALLOWED,
                    f"namespace {ns} is missing, but the identity may create it "
                    f"({f.reason})".replace(" ()", ""),
                )
            )
        elif f.decision is Decision.DENIED:
            findings.append(
                Finding(
                    f.requirement,
                    Decision.DENIED,
                    f"namespace {ns} does not exist and the identity may not create it",
                )
            )
        else:
            findings.append(f)
    return findings, warnings


def _holding_requirements(req: Requirement) -> list[Requirement]:
    """The checks that stand for "holds every permission the role grants"."""
    assert req.alternative is not None
    out = []
    for i, h in enumerate(req.alternative.holds):
        for verb in h.verbs:
            out.append(
                Requirement(
                    id=f"{req.id}.holds-{i}-{verb}",
                    rule_id=req.rule_id,
                    feature=req.feature,
                    required=req.required,
                    verb=verb,
                    group=h.group,
                    resource=h.resource,
                    subresource="",
                    namespace="" if h.cluster else req.namespace,
                    name="",
                    why=req.why,
                    breaks=req.breaks,
                    source=req.source,
                )
            )
    return out


def _resolve_alternatives(
    findings: Sequence[Finding], reviewer: Reviewer, subject: Subject
) -> list[Finding]:
    """Decide denied bind/escalate checks as the apiserver does.

    Creating a (Cluster)RoleBinding needs ``bind`` on the role OR holding every
    permission the role grants; creating or updating a role needs ``escalate``
    OR holding what it grants (pkg/registry/rbac/escalation_check.go,
    pkg/registry/rbac/validation/rule.go ConfirmNoEscalation). A denied check is
    therefore asked again as its alternative before it fails.
    """
    pending = [f for f in findings if f.decision is Decision.DENIED and f.requirement.alternative]
    if not pending:
        return list(findings)
    asked = {f.requirement.id: _holding_requirements(f.requirement) for f in pending}
    review = reviewer.review(subject, [r for reqs in asked.values() for r in reqs])
    by_id = {f.requirement.id: f for f in review.findings}
    out = []
    for f in findings:
        if f not in pending:
            out.append(f)
            continue
        req = f.requirement
        alt = req.alternative
        assert alt is not None
        held = [by_id[r.id] for r in asked[req.id] if r.id in by_id]
        decisions = {h.decision for h in held}
        if len(held) == len(asked[req.id]) and decisions == {Decision.ALLOWED}:
            out.append(
                Finding(
                    req,
                    Decision.ALLOWED,
                    f"{req.verb} is not granted, but the identity holds {alt.text}, which the "
                    "apiserver's escalation check accepts instead",
                )
            )
        elif Decision.UNKNOWN in decisions or len(held) != len(asked[req.id]):
            out.append(
                Finding(
                    req,
                    Decision.UNKNOWN,
                    f"{req.verb} is denied and whether the identity holds {alt.text} could not "
                    "be decided",
                )
            )
        else:
            out.append(
                Finding(
                    req,
                    Decision.DENIED,
                    f"{f.reason}; nor does the identity hold {alt.text}".lstrip("; "),
                    f.evaluation_error,
                    f.denied_explicitly,
                )
            )
    return out


def run_check(
    catalogue: Catalogue,
    plan: CheckPlan,
    subject: Subject,
    reviewer: Reviewer,
    *,
    extra_warnings: Sequence[str] = (),
) -> Report:
    """Check every requirement of the plan for ``subject`` and build the Report."""
    requirements = bind(
        catalogue,
        plan.namespace,
        plan.features,
        plan.required_features,
        version=plan.skypilot.version if plan.skypilot else None,
        not_applicable=[name for name, _ in plan.not_applicable],
    )
    result = reviewer.review(subject, requirements)
    reviewed = _resolve_alternatives(result.findings, reviewer, subject)
    ns_findings, ns_warnings = _missing_namespace_findings(
        catalogue, plan, result, reviewer, subject
    )
    # Catalogue order within each feature (rules as written, verbs as listed);
    # namespace preconditions last in their feature.
    position = {r.id: i for i, r in enumerate(requirements)}
    findings = sorted(
        [*reviewed, *ns_findings],
        key=lambda f: (
            plan.features.index(f.requirement.feature),
            position.get(f.requirement.id, len(position)),
        ),
    )
    warnings = tuple(dict.fromkeys([*extra_warnings, *result.warnings, *ns_warnings]))
    return Report(
        mode=reviewer.mode,
        method=result.method,
        context=plan.context,
        namespace=plan.namespace,
        subject=subject,
        findings=tuple(findings),
        features=plan.features,
        required_features=plan.required_features,
        warnings=warnings,
        fail_on=plan.fail_on,
        skypilot=plan.skypilot,
        profile=plan.profile,
        not_applicable=tuple(
            (name, reason) for name, reason in plan.not_applicable if name in plan.features
        ),
    )
