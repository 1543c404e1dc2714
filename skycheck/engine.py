"""Runs one check: requirements + subject + reviewer -> a frozen Report.

The engine is the same for live and offline mode; only the reviewer differs.
It also records, for each namespace SkyPilot hard-codes (skypilot-system,
ingress-nginx), a typed precondition: SkyPilot cannot run its DaemonSet in a
namespace that does not exist, whatever Roles say. A missing skypilot-system
fails unless the identity may create namespaces; a missing ingress-nginx fails
until the ingress controller is installed; a namespace the caller may not read
is unknown, never missing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from skycheck.catalogue import Catalogue, bind
from skycheck.models import (
    SKYPILOT_NAMESPACES,
    Decision,
    FailOn,
    Finding,
    NamespacePrecondition,
    NamespaceState,
    Report,
    Requirement,
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
    """The check standing for "namespace X exists, or the identity may create it".

    For a namespace SkyPilot owns the question asked is ``create namespaces``;
    for another component's namespace nothing is asked (only installing the
    component helps), and the requirement names the namespace itself.
    """
    owned = namespace in SKYPILOT_NAMESPACES
    return Requirement(
        id=f"{feature}.namespace-{namespace}.{'create' if owned else 'exists'}",
        rule_id=f"{feature}.namespace-{namespace}",
        feature=feature,
        required=required,
        verb="create" if owned else "get",
        group="",
        resource="namespaces",
        subresource="",
        namespace="",
        name="" if owned else namespace,
        why=f"SkyPilot hard-codes namespace {namespace} for this feature; it must exist"
        + (" (or the identity must be able to create it)." if owned else "."),
        breaks=f"Everything this feature does in {namespace} fails: the namespace is missing.",
        source="docs, namespace precondition",
    )


def _lookup(ns: str, result: ReviewResult, reviewer: Reviewer) -> tuple[NamespaceState, str]:
    """What the reviewer learnt about namespace ``ns``, and what could not be read."""
    exists = dict(result.namespaces).get(ns)
    if exists is True:
        return NamespaceState.EXISTS, ""
    if exists is False:
        return NamespaceState.MISSING, ""
    if ns in result.namespaces_forbidden:
        return NamespaceState.UNKNOWN, "the caller may not get namespaces"
    if reviewer.mode != "live":
        return NamespaceState.UNKNOWN, "offline: outside what the manifests say"
    return NamespaceState.UNKNOWN, "the lookup failed"


def _namespace_preconditions(
    catalogue: Catalogue,
    plan: CheckPlan,
    result: ReviewResult,
    reviewer: Reviewer,
    subject: Subject,
) -> tuple[list[NamespacePrecondition], list[Finding], list[str]]:
    """(every hard-coded namespace's precondition, the findings that stand for the
    ones that decide something, warnings).

    Exists: nothing to check. Missing and SkyPilot's own: may the identity create
    namespaces? Missing and another component's (ingress-nginx): the feature fails
    until that component is installed. Unknown because the caller may not read
    namespaces (403, normal for a namespace-scoped identity): no check, a warning;
    the reviews in that namespace answer as usual. Unknown because the lookup
    failed live (a fault): an unknown check, so the gate fails closed.
    """
    preconditions: list[NamespacePrecondition] = []
    warnings: list[str] = []
    to_ask: list[tuple[Requirement, NamespacePrecondition]] = []
    findings: list[Finding] = []
    for feature in catalogue.features:
        if feature.name not in plan.features:
            continue
        required = feature.name in plan.required_features
        for ns in feature.fixed_namespaces:
            state, why = _lookup(ns, result, reviewer)
            pre = NamespacePrecondition(feature.name, ns, state, why=why)
            req = namespace_requirement(feature.name, ns, required)
            if state is NamespaceState.MISSING and pre.skypilot_owned:
                to_ask.append((req, pre))
                continue
            preconditions.append(pre)
            if state is NamespaceState.MISSING:
                findings.append(
                    Finding(
                        req,
                        Decision.DENIED,
                        f"namespace {ns} does not exist: install {pre.owner} first "
                        "(SkyPilot does not create it, and a fix must not)",
                        precondition=pre,
                    )
                )
            elif state is NamespaceState.UNKNOWN and why == "the lookup failed":
                findings.append(
                    Finding(
                        req,
                        Decision.UNKNOWN,
                        f"not checked: could not tell whether namespace {ns} exists",
                        precondition=pre,
                    )
                )
    if plan.namespace and dict(result.namespaces).get(plan.namespace) is False:
        warnings.append(
            f"namespace {plan.namespace} does not exist: SkyPilot never creates its "
            "workload namespace, so create it before launching"
        )
    if to_ask:
        review = reviewer.review(subject, [req for req, _ in to_ask])
        for f, (_, pre) in zip(review.findings, to_ask, strict=True):
            pre = replace(pre, may_create=f.decision)
            preconditions.append(pre)
            ns = pre.namespace
            if f.decision is Decision.ALLOWED:
                reason = f"namespace {ns} is missing, but the identity may create it " + (
                    f"({f.reason})" if f.reason else ""
                )
                findings.append(replace(f, reason=reason.strip(), precondition=pre))
            elif f.decision is Decision.DENIED:
                findings.append(
                    replace(
                        f,
                        reason=f"namespace {ns} does not exist and the identity may not create it",
                        precondition=pre,
                    )
                )
            else:
                findings.append(replace(f, precondition=pre))
    return preconditions, findings, warnings


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
    preconditions, ns_findings, ns_warnings = _namespace_preconditions(
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
        preconditions=tuple(
            sorted(preconditions, key=lambda p: (plan.features.index(p.feature), p.namespace))
        ),
    )
