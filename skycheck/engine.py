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
    Report,
    Requirement,
    Scope,
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
        if feature.name not in plan.features:
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


def run_check(
    catalogue: Catalogue,
    plan: CheckPlan,
    subject: Subject,
    reviewer: Reviewer,
    *,
    extra_warnings: Sequence[str] = (),
) -> Report:
    """Check every requirement of the plan for ``subject`` and build the Report."""
    requirements = bind(catalogue, plan.namespace, plan.features, plan.required_features)
    result = reviewer.review(subject, requirements)
    ns_findings, ns_warnings = _missing_namespace_findings(
        catalogue, plan, result, reviewer, subject
    )
    # Catalogue order within each feature (rules as written, verbs as listed);
    # namespace preconditions last in their feature.
    position = {r.id: i for i, r in enumerate(requirements)}
    findings = sorted(
        [*result.findings, *ns_findings],
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
    )
