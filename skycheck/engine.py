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
    Profile,
    Report,
    Requirement,
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
    # The identity is the account SkyPilot's pods run as: its ``account: pods`` rules apply.
    pods_account: bool = False


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
    # Only namespaces whose rules were bound: a rule that does not apply here (``when``,
    # or a SkyPilot version that no longer makes the request) brings no precondition.
    # A rule reading a namespace by name (SkyPilot's get of skypilot-system before it
    # creates it) brings that namespace's precondition too.
    bound = {(f.requirement.feature, f.requirement.namespace) for f in result.findings} | {
        (f.requirement.feature, f.requirement.name)
        for f in result.findings
        if f.requirement.resource == "namespaces" and f.requirement.name
    }
    for feature in catalogue.features:
        if feature.name not in plan.features or feature.name in dict(plan.not_applicable):
            continue
        required = feature.name in plan.required_features
        named = {r.name for r in feature.rules if r.resource == "namespaces" and r.name}
        for ns in sorted(set(feature.fixed_namespaces) | named):
            if (feature.name, ns) not in bound:
                continue
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
    elif plan.namespace and plan.namespace in dict(result.namespaces):
        state, why = _lookup(plan.namespace, result, reviewer)
        if state is NamespaceState.UNKNOWN and why == "the lookup failed":
            # The server failed mid-run (not a 403): fail closed, as for the hard-coded
            # namespaces, rather than pass with the workload namespace unconfirmed.
            first = plan.features[0]
            findings.append(
                Finding(
                    namespace_requirement(first, plan.namespace, first in plan.required_features),
                    Decision.UNKNOWN,
                    f"not checked: could not tell whether namespace {plan.namespace} exists",
                )
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
        pods_account=plan.pods_account,
    )
    result = reviewer.review(subject, requirements)
    reviewed = _resolve_alternatives(result.findings, reviewer, subject)
    preconditions, ns_findings, ns_warnings = _namespace_preconditions(
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
        preconditions=tuple(
            sorted(preconditions, key=lambda p: (plan.features.index(p.feature), p.namespace))
        ),
    )
