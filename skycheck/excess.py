"""The excess audit: what an identity holds beyond what the checked features need.

From an :class:`~skycheck.rbac.RbacState` (the manifests over the bootstrap policy offline,
the cluster's own RBAC objects live) every rule the identity holds is expanded into single
permissions (one verb, one resource, one namespace, one name), with the authorizer's own
resolution (``rbac.rules_held``: aggregation and bootstrap roles included). A permission
some check of a required feature needs is not excess; one SkyPilot needs only a narrower
part of (one namespace, one object) is excess and says which part is needed. Each is rated
by the risk table (``risk.py``).

Wildcards are reported as what they reach: ``*`` verbs as the verbs each resource has
(escalate, bind, impersonate and approve included where they exist), ``*`` resources and
groups as the resources skycheck knows (the bootstrap policy's, the catalogue's, the
cluster-scoped ones and the risky subresources), plus one item per wildcard rule for any
other or future resource.

Grants every authenticated identity holds from the cluster's default bindings (discovery,
``system:basic-user``, ``system:public-info-viewer``) are not counted: they are the same
for every identity and no role can take them away from one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from functools import cache

from skycheck import rbac
from skycheck.excess_types import (
    Excess,
    ExcessItem,
    ExcessState,
    Grant,
    NeededRisk,
    Risk,
)
from skycheck.models import Effect, Report, Requirement
from skycheck.permission import Permission
from skycheck.requestinfo import reads_namespace_by_name
from skycheck.risk import RiskTable, load_risk_table

STANDARD_VERBS = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")
# Requests that never carry an object name, so a rule with resourceNames never allows them.
# A list or watch does carry one when its fieldSelector is metadata.name=X (RequestInfo sets
# the name from it: k8s.io/apiserver pkg/endpoints/request/requestinfo.go), so they can.
NAMELESS_VERBS = frozenset({"create", "deletecollection"})
# The groups every identity of its kind is in: the default bindings to them are baseline.
UNIVERSAL_GROUPS = frozenset(
    {"system:authenticated", "system:unauthenticated", "system:serviceaccounts"}
)
BOOTSTRAP_LABEL = ("kubernetes.io/bootstrapping", "rbac-defaults")

# Cluster-scoped resources of the built-in API (kubectl api-resources --namespaced=false),
# plus the pseudo-resources of impersonation and signing. Anything else is namespaced.
CLUSTER_SCOPED = frozenset(
    {
        ("", "nodes"),
        ("", "namespaces"),
        ("", "persistentvolumes"),
        ("", "componentstatuses"),
        ("", "users"),
        ("", "groups"),
        ("admissionregistration.k8s.io", "mutatingwebhookconfigurations"),
        ("admissionregistration.k8s.io", "validatingwebhookconfigurations"),
        ("admissionregistration.k8s.io", "validatingadmissionpolicies"),
        ("admissionregistration.k8s.io", "validatingadmissionpolicybindings"),
        ("admissionregistration.k8s.io", "mutatingadmissionpolicies"),
        ("admissionregistration.k8s.io", "mutatingadmissionpolicybindings"),
        ("apiextensions.k8s.io", "customresourcedefinitions"),
        ("apiregistration.k8s.io", "apiservices"),
        ("authentication.k8s.io", "tokenreviews"),
        ("authentication.k8s.io", "selfsubjectreviews"),
        ("authentication.k8s.io", "uids"),
        ("authentication.k8s.io", "userextras"),
        ("authorization.k8s.io", "selfsubjectaccessreviews"),
        ("authorization.k8s.io", "selfsubjectrulesreviews"),
        ("authorization.k8s.io", "subjectaccessreviews"),
        ("certificates.k8s.io", "certificatesigningrequests"),
        ("certificates.k8s.io", "signers"),
        ("certificates.k8s.io", "clustertrustbundles"),
        ("flowcontrol.apiserver.k8s.io", "flowschemas"),
        ("flowcontrol.apiserver.k8s.io", "prioritylevelconfigurations"),
        ("networking.k8s.io", "ingressclasses"),
        ("networking.k8s.io", "ipaddresses"),
        ("networking.k8s.io", "servicecidrs"),
        ("node.k8s.io", "runtimeclasses"),
        ("rbac.authorization.k8s.io", "clusterroles"),
        ("rbac.authorization.k8s.io", "clusterrolebindings"),
        ("resource.k8s.io", "deviceclasses"),
        ("resource.k8s.io", "resourceslices"),
        ("scheduling.k8s.io", "priorityclasses"),
        ("storage.k8s.io", "csidrivers"),
        ("storage.k8s.io", "csinodes"),
        ("storage.k8s.io", "storageclasses"),
        ("storage.k8s.io", "volumeattachments"),
        ("storage.k8s.io", "volumeattributesclasses"),
    }
)
# Verbs a resource has beyond (or instead of) the standard ones: what ``*`` reaches.
_SPECIAL_VERBS: dict[tuple[str, str], tuple[str, ...]] = {
    ("rbac.authorization.k8s.io", "roles"): (*STANDARD_VERBS, "bind", "escalate"),
    ("rbac.authorization.k8s.io", "clusterroles"): (*STANDARD_VERBS, "bind", "escalate"),
    ("", "serviceaccounts"): (*STANDARD_VERBS, "impersonate"),
    ("", "users"): ("impersonate",),
    ("", "groups"): ("impersonate",),
    ("authentication.k8s.io", "uids"): ("impersonate",),
    ("authentication.k8s.io", "userextras"): ("impersonate",),
    ("certificates.k8s.io", "signers"): ("approve", "sign", "attest"),
}
_REVIEWS = frozenset(
    {
        "tokenreviews",
        "selfsubjectreviews",
        "selfsubjectaccessreviews",
        "selfsubjectrulesreviews",
        "subjectaccessreviews",
        "localsubjectaccessreviews",
    }
)
_SUBRESOURCE_VERBS: dict[str, tuple[str, ...]] = {
    "exec": ("get", "create"),
    "attach": ("get", "create"),
    "portforward": ("get", "create"),
    "proxy": ("get", "create", "update", "patch", "delete"),
    "log": ("get",),
    "token": ("create",),
    "eviction": ("create",),
    "binding": ("create",),
    "finalize": ("update",),
}
# The namespace subresources that still mean the Namespace itself (requestinfo.py).
_NAMESPACE_SELF = ("", "status", "finalize")
_NAMED_NAMESPACE_VERBS = ("get", "update", "patch", "delete")


# Subresources the risk table rates that the bootstrap policy does not name.
_EXTRA_RESOURCES = frozenset(
    {
        ("", "pods", "attach"),
        ("", "pods", "exec"),
        ("", "pods", "ephemeralcontainers"),
        ("", "pods", "portforward"),
        ("", "nodes", "proxy"),
        ("", "serviceaccounts", "token"),
        ("certificates.k8s.io", "certificatesigningrequests", "approval"),
    }
)


def verbs_of(group: str, resource: str, subresource: str) -> tuple[str, ...]:
    """The verbs a ``*`` verb reaches on this resource."""
    if subresource:
        if group == "" and resource == "userextras":
            return ("impersonate",)
        return _SUBRESOURCE_VERBS.get(subresource, ("get", "update", "patch"))
    if resource in _REVIEWS:
        return ("create",)
    if (group, resource) in _SPECIAL_VERBS:
        return _SPECIAL_VERBS[(group, resource)]
    if group == "authentication.k8s.io" and resource == "userextras":
        return ("impersonate",)
    return STANDARD_VERBS


def cluster_scoped(group: str, resource: str) -> bool:
    return (group, resource) in CLUSTER_SCOPED


@cache
def known_resources() -> tuple[tuple[str, str, str], ...]:
    """(group, resource, subresource) a wildcard is expanded over: every resource the
    bootstrap policy and the catalogue name, the cluster-scoped ones and the subresources
    the risk table rates."""
    from skycheck.catalogue import load_catalogue

    found: set[tuple[str, str, str]] = set()

    def add(group: str, path: str) -> None:
        if "*" in group or "*" in path:
            return
        res, _, sub = path.partition("/")
        found.add((group, res, sub))

    for obj in rbac.bootstrap_policy().objects:
        if isinstance(obj, (rbac.Role, rbac.ClusterRole)):
            for rule in obj.rules:
                for g in rule.api_groups:
                    for r in rule.resources:
                        add(g, r)
    for entry in load_catalogue().rules:
        add(entry.group, entry.resource_path)
    for group, resource in CLUSTER_SCOPED:
        found.add((group, resource, ""))
    found |= _EXTRA_RESOURCES
    # The resources themselves of every subresource listed.
    found |= {(g, r, "") for g, r, s in found if s}
    return tuple(sorted(found))


@dataclass(frozen=True, slots=True)
class _Atom(Permission):
    url: str = ""
    wildcard: bool = False


def _targets(group: str, path: str) -> list[tuple[str, str, str, bool]]:
    """(group, resource, subresource, wildcard) one (apiGroup, resource) pair of a rule reaches."""
    known = known_resources()
    res, _, sub = path.partition("/")
    out: list[tuple[str, str, str, bool]] = []
    if path == "*" or res == "*":
        want_sub = None if path == "*" else sub
        for g, r, s in known:
            if (group == "*" or g == group) and (want_sub is None or s == want_sub):
                out.append((g, r, s, False))
        out.append((group, "*", "" if want_sub is None else want_sub, True))
        return out
    if group == "*":
        groups = sorted({g for g, r, s in known if r == res and s == sub})
        for g in groups:
            out.append((g, res, sub, False))
        out.append(("*", res, sub, True))
        return out
    return [(group, res, sub, False)]


def _atoms(rule: rbac.PolicyRule, namespace: str) -> Iterable[_Atom]:
    """The single permissions one rule grants in ``namespace`` ("" = cluster-wide)."""
    if rule.non_resource_urls:
        if namespace:
            return  # a RoleBinding's rules apply only to namespaced requests
        for verb in rule.verbs:
            for url in rule.non_resource_urls:
                yield _Atom(verb, "", "", "", "", "", url=url)
        return
    names = rule.resource_names or ("",)
    for group in rule.api_groups:
        for path in rule.resources:
            targets = _targets(group, path)
            if "*" in rule.verbs and len(targets) == 1 and not targets[0][3]:
                # A concrete resource with a * verb: also any other (custom, future) verb.
                g, res, sub, _ = targets[0]
                if not (namespace and cluster_scoped(g, res)):  # a Role reaches none of it
                    for name in names:
                        yield _Atom("*", g, res, sub, namespace, name, wildcard=True)
            for g, res, sub, wildcard in targets:
                if wildcard:
                    for verb in rule.verbs:
                        for name in names:
                            yield _Atom(verb, g, res, sub, namespace, name, wildcard=True)
                    continue
                verbs = verbs_of(g, res, sub) if "*" in rule.verbs else rule.verbs
                if cluster_scoped(g, res):
                    if not namespace:
                        for verb in verbs:
                            for name in names:
                                if name and verb in NAMELESS_VERBS:
                                    continue
                                # A namespace read or written by name is authorized in
                                # itself: such a grant limited to names reaches only those.
                                where = (
                                    name
                                    if name and reads_namespace_by_name(verb, g, res, sub, name)
                                    else ""
                                )
                                yield _Atom(verb, g, res, sub, where, name)
                    elif g == "" and res == "namespaces" and sub in _NAMESPACE_SELF:
                        # The namespace quirk: a namespace read or written by name is
                        # authorized in itself, so this binding reaches its own namespace.
                        if rule.resource_names and namespace not in rule.resource_names:
                            continue
                        for verb in verbs:
                            if reads_namespace_by_name(verb, g, res, sub, namespace):
                                yield _Atom(verb, g, res, sub, namespace, namespace)
                    continue
                for verb in verbs:
                    for name in names:
                        if name and verb in NAMELESS_VERBS:
                            continue  # a request without a name never matches resourceNames
                        yield _Atom(verb, g, res, sub, namespace, name)


def _grant(
    state: rbac.RbacState, held: rbac.HeldRules, users: dict[tuple[str, str, str], int]
) -> Grant:
    """The grant of one binding; ``rule`` is set per rule by the caller."""
    b = held.binding
    ref = b.role_ref
    others = [s for s in b.subjects if s is not held.subject]
    role_ns = b.namespace if ref.kind == "Role" else ""
    return Grant(
        role_kind=ref.kind,
        role=ref.name,
        binding_kind=b.kind,
        binding=b.name,
        namespace=b.namespace,
        shared=bool(others)
        or held.subject.kind == "Group"
        or users.get((ref.kind, role_ns, ref.name), 0) > 1,
    )


def _aggregated(state: rbac.RbacState, held: rbac.HeldRules) -> bool:
    ref = held.binding.role_ref
    role = state.cluster_role(ref.name) if ref.kind == "ClusterRole" else None
    return role is not None and role.aggregation is not None


def _baseline(held: rbac.HeldRules) -> bool:
    """A default binding of the cluster to a group every identity of its kind is in."""
    return (
        held.subject.kind == "Group"
        and held.subject.name in UNIVERSAL_GROUPS
        and BOOTSTRAP_LABEL in held.binding.labels
    )


def needed_requirements(report: Report) -> tuple[Requirement, ...]:
    """What the identity needs: the checks of the required features that SkyPilot makes
    (fatal or degrades; documented ones too under ``--profile docs``). A report that
    requires no feature (SkyPilot's own account, shown for information) needs what its
    checked features need."""
    every = not report.required_features
    out = []
    for f in report.findings:
        r = f.requirement
        if not (r.required or every):
            continue
        if r.effect is Effect.DEGRADES or report.profile.gates(r.effect):
            out.append(r)
    return tuple(out)


def _optional_uses(report: Report) -> dict[tuple[str, str, str, str], set[str]]:
    """Checked features that are not required, by the permission they would use."""
    out: dict[tuple[str, str, str, str], set[str]] = {}
    if not report.required_features:
        return out  # every checked feature is needed (needed_requirements)
    for f in report.findings:
        r = f.requirement
        if not r.required:
            out.setdefault((r.verb, r.group, r.resource, r.subresource), set()).add(r.feature)
    return out


def _where(namespace: str, name: str) -> str:
    text = f"{name} " if name else ""
    return text + (f"in namespace {namespace}" if namespace else "cluster-wide")


def _is_cluster_wide(group: str, resource: str, namespace: str) -> bool:
    """Held in every namespace: a namespaced resource granted cluster-wide."""
    return not namespace and not cluster_scoped(group, resource) and resource != "*"


def audit(
    state: rbac.RbacState,
    report: Report,
    *,
    source: str,
    table: RiskTable | None = None,
    notes: Sequence[str] = (),
    count_baseline: bool = False,
) -> Excess:
    """The excess of ``report``'s subject under ``state`` (complete: every grant is read).

    ``count_baseline``: count the default grants every identity holds too (the live
    rules review needs them, to take them out of an answer that cannot tell them apart)."""
    table = table or load_risk_table()
    subject = report.subject
    needs: dict[tuple[str, str, str, str], list[Requirement]] = {}
    for r in needed_requirements(report):
        needs.setdefault((r.verb, r.group, r.resource, r.subresource), []).append(r)
    optional = _optional_uses(report)
    grants: dict[_Atom, list[Grant]] = {}
    baseline = 0
    users = state.role_uses()
    for held in rbac.rules_held(state, subject.username, subject.groups):
        if held.error:
            continue  # the binding grants nothing (the report warns about it)
        base = _baseline(held) and not count_baseline
        binding_grant = _grant(state, held, users)
        aggregated = _aggregated(state, held)
        for index, rule in enumerate(held.rules):
            grant = binding_grant if aggregated else replace(binding_grant, rule=index)
            for atom in _atoms(rule, held.namespace):
                if base:
                    baseline += 1
                    continue
                bucket = grants.setdefault(atom, [])
                if grant not in bucket:
                    bucket.append(grant)
    items: list[ExcessItem] = []
    if rbac.bypasses_rbac(subject.groups):
        risk, risk_id, reason = table.classify("*", "*", "*", "", False)
        items.append(
            ExcessItem(
                "*",
                "*",
                "*",
                "",
                "",
                "",
                risk,
                (Grant("Group", rbac.SYSTEM_MASTERS, "", "", shared=True),),
                reason or "A member of system:masters bypasses RBAC: every request is allowed.",
                risk_id,
                wildcard=True,
            )
        )
    for atom, by in grants.items():
        key = (atom.verb, atom.group, atom.resource, atom.subresource)
        needed_note = ""
        if not atom.url and not atom.wildcard:
            wanted = needs.get(key, [])
            if any(r.request_namespace == atom.namespace and r.name == atom.name for r in wanted):
                continue  # exactly what SkyPilot needs
            covered = [
                r
                for r in wanted
                if atom.namespace in ("", r.request_namespace) and atom.name in ("", r.name)
            ]
            if covered:
                parts = sorted({_where(r.request_namespace, r.name) for r in covered})
                needed_note = "SkyPilot needs it only " + ", ".join(parts)
            elif key in optional:
                features = ", ".join(sorted(optional[key]))
                needed_note = f"used by {features}, checked here but not required"
        if atom.url:
            risk, risk_id, reason = (
                (Risk.MEDIUM, "default-write", "")
                if atom.verb == "*" or atom.url == "*"
                else (Risk.LOW, "default-read", "")
            )
        else:
            risk, risk_id, reason = table.classify(
                atom.verb,
                atom.group,
                atom.resource,
                atom.subresource,
                _is_cluster_wide(atom.group, atom.resource, atom.namespace),
            )
        if atom.wildcard:
            if atom.resource == "*":
                wildcard_note = "also any other or future resource a wildcard matches"
            elif atom.group == "*":
                wildcard_note = "also in any other or future API group a wildcard matches"
            else:
                wildcard_note = "also any other verb a wildcard matches"
            needed_note = f"{wildcard_note}; {needed_note}" if needed_note else wildcard_note
        items.append(
            ExcessItem(
                verb=atom.verb,
                group=atom.group,
                resource=atom.resource,
                subresource=atom.subresource,
                namespace=atom.namespace,
                name=atom.name,
                risk=risk,
                granted_by=tuple(sorted(by, key=lambda g: (g.namespace, g.binding, g.role))),
                reason=reason,
                risk_id=risk_id,
                needed=needed_note,
                non_resource_url=atom.url,
                wildcard=atom.wildcard,
            )
        )
    out_notes = list(notes)
    if baseline:
        out_notes.append(
            f"{baseline} permission(s) every authenticated identity holds from the cluster's "
            "default bindings (discovery, system:basic-user, system:public-info-viewer) "
            "are not counted"
        )
    return Excess(
        state=ExcessState.COMPLETE,
        source=source,
        items=tuple(sorted(items, key=item_key)),
        needed=needed_risks(report, table),
        notes=tuple(out_notes),
        least_privilege=least_privilege(report),
    )


def least_privilege(report: Report) -> str | None:
    """What the identity should hold instead: the fix-it manifest for the whole need
    (``skycheck manifest``'s generator), bound to the subject; None if it needs nothing
    or has no name to bind."""
    from skycheck.fixit import build_manifest

    subject = report.subject
    if not subject.bindable:
        return None
    need = [r for r in needed_requirements(report) if not _is_precondition(report, r)]
    version = f"SkyPilot {report.skypilot.version}" if report.skypilot else "SkyPilot"
    header = (
        f"# Least privilege for {subject.username}, made by skycheck: what {version} needs\n"
        f"# for {', '.join(report.required_features)}, nothing else. It replaces the bindings "
        "the excess report names;\n# apply with kubectl auth reconcile -f FILE.\n"
    )
    return build_manifest(subject, need, header=header)


def _is_precondition(report: Report, req: Requirement) -> bool:
    return any(f.requirement is req and f.precondition is not None for f in report.findings)


def item_key(item: ExcessItem) -> tuple[object, ...]:
    """Worst first, then by resource, scope and verb: deterministic output."""
    from skycheck.render._common import verb_rank

    return (
        -item.risk.rank,
        item.group,
        item.resource,
        item.subresource,
        item.non_resource_url,
        item.namespace,
        item.name,
        verb_rank(item.verb),
    )


def needed_risks(report: Report, table: RiskTable | None = None) -> tuple[NeededRisk, ...]:
    """The risky permissions (medium and up) SkyPilot needs, with the catalogue's why."""
    table = table or load_risk_table()
    out = []
    for r in needed_requirements(report):
        risk, risk_id, reason = table.classify(
            r.verb,
            r.group,
            r.resource,
            r.subresource,
            _is_cluster_wide(r.group, r.resource, r.request_namespace),
        )
        if risk.at_least(Risk.MEDIUM):
            out.append(
                NeededRisk(
                    check_id=r.id,
                    verb=r.verb,
                    group=r.group,
                    resource=r.resource,
                    subresource=r.subresource,
                    namespace=r.namespace,
                    name=r.name,
                    risk=risk,
                    risk_id=risk_id,
                    reason=reason,
                    why=r.why,
                )
            )
    return tuple(sorted(out, key=lambda n: (-n.risk.rank, n.check_id)))


def unknown(why: str) -> Excess:
    """Nothing the identity holds could be read: excess is unknown, never "none"."""
    return Excess(state=ExcessState.UNKNOWN, source="", notes=(why,))
